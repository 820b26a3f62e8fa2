import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isDiskwrightError } from '../../../src/errors.js';
import { maxPartitionSize, parsePartitionTable, readPartitionTable, resizePartition } from '../../../src/partition/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { articleLikeDos, dosImage, entry, gptImage } from './build.js';

let dir = '';
beforeAll(async () => {
  dir = await tempDir('diskwright-resize-');
});

async function imageFile(name: string, bytes: Uint8Array, grownSectors?: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  if (grownSectors) await truncate(path, grownSectors * 512);
  return path;
}

const rejectsWith = (code: string) => (e: unknown) => isDiskwrightError(e) && e.code === code;

describe('resizePartition', () => {
  it('grows a last primary partition and keeps the boot code and disk id', async () => {
    const image = dosImage(2048, { diskId: 0xcafe, primaries: [{ start: 64n, size: 100n, type: 0x83 }, { start: 200n, size: 100n, type: 0x83, bootable: true }] });
    image.fill(0xab, 0, 440);
    const path = await imageFile('primary.img', image, 8192);
    const table = await resizePartition(path, 2, 7000n);
    expect(table.partitions.map((p) => [p.number, p.start, p.size, p.bootable])).toEqual([
      [1, 64n, 100n, false],
      [2, 200n, 7000n, true],
    ]);
    expect(table.id).toBe('0x0000cafe');
    const bytes = await readFile(path);
    expect(bytes.subarray(0, 440).every((b) => b === 0xab)).toBe(true);
  });

  it('grows the last logical partition and the extended container', async () => {
    const path = await imageFile('logical.img', articleLikeDos(), 8192);
    const table = await resizePartition(path, 7, 5000n);
    expect(table.warnings).toEqual([]);
    expect(table.partitions.find((p) => p.number === 7)!.size).toBe(5000n);
    expect(table.partitions.find((p) => p.number === 2)!.size).toBe(3102n + 5000n - 2000n);
  });

  it('leaves the image untouched when it refuses', async () => {
    const original = articleLikeDos();
    const path = await imageFile('refuse.img', original, 8192);
    await expect(resizePartition(path, 5, 1000n)).rejects.toSatisfy(rejectsWith('E_INVALID_ARGUMENT')); // not last
    await expect(resizePartition(path, 7, 10n)).rejects.toSatisfy(rejectsWith('E_INVALID_ARGUMENT')); // shrink
    await expect(resizePartition(path, 7, 100000n)).rejects.toSatisfy(rejectsWith('E_INVALID_ARGUMENT')); // past the end
    await expect(resizePartition(path, 2, 9000n)).rejects.toSatisfy(rejectsWith('E_INVALID_ARGUMENT')); // the container
    await expect(resizePartition(path, 9, 9000n)).rejects.toSatisfy(rejectsWith('E_NO_PARTITION'));
    const after = await readFile(path);
    expect(Buffer.compare(after.subarray(0, original.length), original)).toBe(0); // Buffer.compare: a 2 MiB toEqual is slow
  });

  it('grows the last GPT partition, moves the backup to the new end and keeps both copies valid', async () => {
    const image = gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [entry(1, 40n, 1000n), entry(3, 1001n, 4000n, { name: 'root' })] }, 4096);
    const path = await imageFile('gpt.img', image, 16384);
    const table = await resizePartition(path, 3, 16384n - 34n - 1001n);
    expect(table.warnings).toEqual([]);
    expect(table.lastUsableLba).toBe(16384n - 34n);
    expect(table.partitions.map((p) => [p.number, p.start, p.size, p.name])).toEqual([
      [1, 40n, 961n, undefined],
      [3, 1001n, 16384n - 34n - 1001n, 'root'],
    ]);
    // Wipe the primary header: the relocated backup alone must give the same table.
    const bytes = new Uint8Array(await readFile(path));
    bytes.fill(0, 512, 1024);
    const fromBackup = parsePartitionTable(bytes);
    expect(fromBackup.partitions).toEqual(table.partitions);
    // The old backup header at LBA 4095 was cleared.
    expect(bytes.subarray(4095 * 512, 4095 * 512 + 8).every((b) => b === 0)).toBe(true);
  });

  it('refuses a GPT partition end past the last usable LBA', async () => {
    const image = gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [entry(1, 40n, 1000n)] }, 4096);
    const path = await imageFile('gpt-past.img', image, 4096);
    await expect(resizePartition(path, 1, 4096n - 40n - 10n)).rejects.toSatisfy(rejectsWith('E_INVALID_ARGUMENT'));
    expect((await readPartitionTable(path)).partitions[0]!.size).toBe(961n);
  });

  it("grows to the end of the image with 'max' (dos: last sector; GPT: last usable LBA after the move)", async () => {
    const dos = await imageFile('max-dos.img', articleLikeDos(), 10000);
    expect(await maxPartitionSize(dos, 7)).toBe(10000n - 3102n);
    expect((await resizePartition(dos, 7, 'max')).partitions.at(-1)!.size).toBe(10000n - 3102n);
    const gpt = await imageFile('max-gpt.img', gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [entry(2, 100n, 200n)] }, 4096), 9000);
    const table = await resizePartition(gpt, 2, 'max');
    expect(table.partitions[0]!.start + table.partitions[0]!.size - 1n).toBe(9000n - 34n);
    expect(table.lastUsableLba).toBe(9000n - 34n);
    expect(await maxPartitionSize(gpt, 2)).toBe(table.partitions[0]!.size);
  });
});
