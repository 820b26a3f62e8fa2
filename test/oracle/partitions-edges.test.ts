import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/bytes/crc32.js';
import { formatSfdiskJson, readPartitionTable } from '../../src/partition/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const SECTORS = 20480;
let sfdisk = '';
let dir = '';
let pristine: Uint8Array;

/** Sets a 64-bit header field of the header at `lba` and fixes its CRC, as a valid-looking lie. */
function setHeaderField(image: Uint8Array, lba: number, offset: number, value: bigint): void {
  const view = new DataView(image.buffer, image.byteOffset + lba * 512, 512);
  view.setBigUint64(offset, value, true);
  const size = view.getUint32(12, true);
  view.setUint32(16, 0, true);
  view.setUint32(16, crc32(image.subarray(lba * 512, lba * 512 + size)), true);
}

async function sfdiskJson(path: string): Promise<string> {
  const result = await execa(sfdisk, ['--json', path], { reject: false });
  return result.stdout;
}

beforeAll(async () => {
  sfdisk = await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('diskwright-gpt-edges-');
  const path = join(dir, 'base.img');
  await writeFile(path, new Uint8Array(SECTORS * 512));
  await execa(sfdisk, ['--quiet', path], { input: 'label: gpt\n,2M\n,\n' });
  pristine = new Uint8Array(await readFile(path));
});

const FIRST = 40;
const LAST = 48;
const cases: [name: string, mutate: (image: Uint8Array) => void][] = [
  ['primary last usable LBA 2^64-1', (i) => setHeaderField(i, 1, LAST, 0xffffffffffffffffn)],
  ['both last usable LBAs 2^64-1', (i) => [1, SECTORS - 1].forEach((l) => setHeaderField(i, l, LAST, 0xffffffffffffffffn))],
  ['primary last usable LBA one past the disk', (i) => setHeaderField(i, 1, LAST, BigInt(SECTORS))],
  ['primary first usable LBA after the last one', (i) => setHeaderField(i, 1, FIRST, 19000n)],
  ['both usable ranges containing LBA 1', (i) => [1, SECTORS - 1].forEach((l) => setHeaderField(i, l, FIRST, 0n))],
  ['backup first usable LBA past the disk', (i) => setHeaderField(i, SECTORS - 1, FIRST, BigInt(SECTORS + 5))],
  ['both headers with a bad CRC', (i) => [1, SECTORS - 1].forEach((l) => (i[l * 512 + 60]! ^= 0xff))],
];

describe('GPT usable ranges that do not fit the disk, against sfdisk --json', () => {
  it.each(cases)('%s: lists what sfdisk lists', async (name, mutate) => {
    const image = pristine.slice();
    mutate(image);
    const path = join(dir, `${name.replace(/\W+/g, '-')}.img`);
    await writeFile(path, image);
    const ours = formatSfdiskJson(await readPartitionTable(path), path);
    expect(ours).not.toMatch(/18446744073709551615/);
    expect(JSON.parse(ours)).toEqual(JSON.parse(await sfdiskJson(path)));
  });
});

describe('labels diskwright does not read', () => {
  const make = (fill: (view: DataView) => void): Uint8Array => {
    const image = new Uint8Array(8 * 512);
    fill(new DataView(image.buffer));
    return image;
  };
  it.each([
    ['sun', make((v) => v.setUint16(508, 0xdabe, false))],
    ['sgi', make((v) => v.setUint32(0, 0x0be5a941, false))],
    ['bsd', make((v) => v.setUint32(512, 0x82564557, true))],
  ] as const)('names a %s label instead of a missing 0x55AA', async (label, image) => {
    const path = join(dir, `${label}.img`);
    await writeFile(path, image);
    await expect(readPartitionTable(path)).rejects.toMatchObject({
      code: 'E_UNSUPPORTED_FEATURE',
      message: `${path}: unsupported label type ${label}: diskwright reads dos (MBR) and gpt partition tables`,
    });
  });
});
