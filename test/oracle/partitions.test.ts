/**
 * Oracle: images partitioned by the real sfdisk (util-linux 2.38) must read back exactly as sfdisk
 * prints them — `sfdisk --json` and `sfdisk -l -uS` compared byte for byte.
 */
import { open, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { isDiskwrightError } from '../../src/errors.js';
import {
  applySectorWrites,
  encodeDosTable,
  encodeGpt,
  formatSfdiskJson,
  formatSfdiskList,
  readPartitionTable,
  resizePartition,
} from '../../src/partition/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
let dir = '';

beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('diskwright-oracle-partitions-');
});

async function sfdisk(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  const result = await execa('sfdisk', args, { env, cwd: dir, input, stripFinalNewline: false });
  return { stdout: result.stdout, stderr: result.stderr };
}

/** Creates a sparse image of `size` bytes in the temp dir and partitions it with an sfdisk script. */
async function makeImage(name: string, size: number, script: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, size);
  await sfdisk(['--quiet', '--no-reread', '--no-tell-kernel', name], script);
  return name;
}

/** Compares our JSON text and listing with sfdisk's for the same path string (relative to dir). */
async function expectSameAsSfdisk(name: string, pathForm: 'relative' | 'absolute' = 'relative'): Promise<void> {
  const path = pathForm === 'relative' ? name : join(dir, name);
  const table = await readPartitionTable(join(dir, name));
  const json = await sfdisk(['--json', path]);
  const list = await sfdisk(['-l', '-uS', path]);
  expect(formatSfdiskJson(table, path)).toBe(json.stdout);
  expect(formatSfdiskList(table, path)).toBe(list.stdout);
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('partition tables written by sfdisk read back exactly as sfdisk prints them', () => {
  it("matches the article's layout: p1 83 bootable, extended 5 with a logical swap at the end of 8 GiB", async () => {
    const name = await makeImage(
      'debbase.img',
      8 * GiB,
      'label: dos\nlabel-id: 0x000c4f2a\nstart=2048, size=15986688, type=83, bootable\nstart=15990782, size=784386, type=5\nstart=15990784, size=784384, type=82\n',
    );
    await expectSameAsSfdisk(name);
    const table = await readPartitionTable(join(dir, name));
    expect(table.partitions.map((p) => [p.number, p.start, p.size])).toEqual([
      [1, 2048n, 15986688n],
      [2, 15990782n, 784386n],
      [5, 15990784n, 784384n],
    ]);
  });

  it('matches several logical partitions with gaps and mixed types', async () => {
    const script = [
      'label: dos',
      'label-id: 0xdeadbeef',
      'start=2048, size=204800, type=83',
      'start=206848, size=1800000, type=5',
      'start=210000, size=1000, type=82',
      'start=300000, size=20000, type=83',
      'start=400000, size=55555, type=8e',
      'start=600000, size=100, type=7',
      'start=700001, size=99999, type=c',
      'start=900000, type=fd',
      '',
    ].join('\n');
    await expectSameAsSfdisk(await makeImage('many.img', GiB, script));
    await expectSameAsSfdisk('many.img', 'absolute');
  });

  it('matches bootable flags, W95 and Linux extended containers and unknown type ids', async () => {
    await expectSameAsSfdisk(
      await makeImage('w95.img', 300 * MiB, 'label: dos\nstart=2048, size=4096, type=ef, bootable\nstart=8192, size=2048, type=a5, bootable\nstart=16384, type=f\nstart=20000, size=1000, type=b\nstart=30000, size=1000, type=e8\n'),
    );
    await expectSameAsSfdisk(await makeImage('linuxext.img', 64 * MiB, 'label: dos\nstart=2048, size=4096, type=83\nstart=8192, type=85\nstart=10240, size=2048, type=83\nstart=14336, type=82\n'));
  });

  it('matches four primaries listed out of disk order', async () => {
    await expectSameAsSfdisk(
      await makeImage('order.img', 100 * MiB, 'label: dos\nstart=40960, size=2048, type=83\nstart=2048, size=2048, type=1\nstart=100000, size=10, type=4\nstart=8192, size=99, type=6, bootable\n'),
    );
  });

  it('matches a tiny disk (sfdisk reports grain 512) and an empty table', async () => {
    await expectSameAsSfdisk(await makeImage('tiny.img', 2 * MiB, 'label: dos\nstart=1, size=10, type=83\nstart=100, size=1000, type=5\nstart=200, size=3, type=83\n'));
    await expectSameAsSfdisk(await makeImage('empty-dos.img', 10 * MiB, 'label: dos\nlabel-id: 0x1\n'));
    await expectSameAsSfdisk(await makeImage('empty-gpt.img', 10 * MiB, 'label: gpt\n'));
  });

  it('names partitions of a path ending in a digit with a p, like sfdisk', async () => {
    await expectSameAsSfdisk(await makeImage('disk0', 20 * MiB, 'label: dos\nstart=2048, size=2048, type=83\n'));
  });

  it('matches GPT names, attributes, type names, unknown types and slot numbers', async () => {
    const script = [
      'label: gpt',
      'label-id: 01234567-89AB-CDEF-0123-456789ABCDEF',
      'start=2048, size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"',
      'start=40960, size=1000, type=S, uuid=11111111-2222-3333-4444-555555555555, attrs="RequiredPartition LegacyBIOSBootable GUID:50,63"',
      'gpt.img5 : start=43008, size=4096, type=L, name="root fs ü"',
      'start=100000, size=1, type=21686148-6449-6E6F-744E-656564454649',
      'start=200000, size=77777, type=12345678-1234-1234-1234-123456789ABC, name="unknown type"',
      'start=300000, type=933AC7E1-2EB4-4F13-B844-0E14E2AEF915, attrs="NoBlockIOProtocol"',
      '',
    ].join('\n');
    await expectSameAsSfdisk(await makeImage('gpt.img', GiB, script));
  });

  it('matches a GPT with a 64-entry table on a tiny disk and a 256-entry table', async () => {
    await expectSameAsSfdisk(await makeImage('gpt64.img', 4 * MiB, 'label: gpt\ntable-length: 64\nsize=100\nsize=200, type=S\n'));
    await expectSameAsSfdisk(await makeImage('gpt256.img', 64 * MiB, 'label: gpt\ntable-length: 256\nsize=1000\n'));
  });

  it('matches a 3 TiB sparse GPT disk (TiB sizes, LBAs past 32 bits)', async () => {
    await expectSameAsSfdisk(await makeImage('big.img', 3 * 1024 * GiB, 'label: gpt\nstart=2048, size=4294967296, type=L\nstart=4294969344, type=L\n'));
  });

  it('reads the backup GPT when the primary header is wiped, as sfdisk does', async () => {
    const name = await makeImage('wiped.img', 64 * MiB, 'label: gpt\nlabel-id: 01234567-89AB-CDEF-0123-456789ABCDEF\nsize=1000, name="keep me"\nsize=5000\n');
    const handle = await open(join(dir, name), 'r+');
    await handle.write(new Uint8Array(512), 0, 512, 512);
    await handle.close();
    const table = await readPartitionTable(join(dir, name));
    expect(table.warnings.join('\n')).toMatch(/primary GPT is damaged/);
    const json = JSON.parse((await sfdisk(['--json', name])).stdout) as { partitiontable: { partitions: unknown[] } };
    expect(JSON.parse(formatSfdiskJson(table, name)).partitiontable.partitions).toEqual(json.partitiontable.partitions);
  });
});

describe('tables written by our encoders are read by sfdisk as intended', () => {
  it('an MBR with an EBR chain of four logical partitions', async () => {
    const sectors = 64 * 2048;
    const path = join(dir, 'ours-dos.img');
    await writeFile(path, '');
    await truncate(path, sectors * 512);
    const handle = await open(path, 'r+');
    const writes = encodeDosTable({
      diskId: 0x0badcafe,
      primaries: [{ start: 2048n, size: 20480n, type: 0x83, bootable: true }, undefined, { start: 30720n, size: BigInt(sectors - 30720), type: 0x05 }],
      logicals: [
        { ebr: 30720n, start: 32768n, size: 10000n, type: 0x82 },
        { ebr: 45056n, start: 47104n, size: 2048n, type: 0x83 },
        { ebr: 51200n, start: 53248n, size: 4096n, type: 0x8e },
        { ebr: 60000n, start: 60001n, size: BigInt(sectors - 60001), type: 0x83 },
      ],
    });
    for (const w of writes) await handle.write(w.bytes, 0, w.bytes.length, Number(w.offset));
    await handle.close();
    const dump = await sfdisk(['-d', 'ours-dos.img']);
    expect(dump.stdout).toContain('ours-dos.img1 : start=        2048, size=       20480, type=83, bootable');
    expect(dump.stdout).toContain('ours-dos.img5 : start=       32768, size=       10000, type=82');
    expect(dump.stdout).toContain('ours-dos.img8 : start=       60001, size=       71071, type=83');
    expect((await sfdisk(['-V', 'ours-dos.img'])).stdout).toContain('No errors detected');
    await expectSameAsSfdisk('ours-dos.img');
  });

  it('a GPT with names and attributes passes sfdisk --verify', async () => {
    const sectors = 32768n;
    const path = join(dir, 'ours-gpt.img');
    const image = applySectorWrites(
      new Uint8Array(Number(sectors) * 512),
      encodeGpt({
        diskGuid: 'AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE',
        diskSectors: sectors,
        firstUsableLba: 2048n,
        partitions: [
          { index: 1, typeGuid: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uniqueGuid: '11111111-1111-1111-1111-111111111111', firstLba: 2048n, lastLba: 4095n, attributes: 1n, name: 'ESP' },
          { index: 3, typeGuid: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', uniqueGuid: '33333333-3333-3333-3333-333333333333', firstLba: 4096n, lastLba: 30000n, attributes: 1n << 60n, name: 'rööt "q"\\' },
        ],
      }),
    );
    await writeFile(path, image);
    const verify = await sfdisk(['-V', 'ours-gpt.img']);
    expect(verify.stdout).toContain('No errors detected');
    expect(verify.stderr).toBe('');
    await expectSameAsSfdisk('ours-gpt.img');
  });
});

describe('hostile chains in sfdisk-made images', () => {
  it('throws E_LOOP when the last EBR is patched to link back to the first', async () => {
    const name = await makeImage('loop.img', 64 * MiB, 'label: dos\nstart=2048, size=2048, type=83\nstart=8192, type=5\nstart=10240, size=2048, type=83\nstart=20480, size=2048, type=83\nstart=30720, size=2048, type=82\n');
    const before = await readPartitionTable(join(dir, name));
    const last = before.partitions.at(-1)!;
    expect(last.number).toBe(7);
    const handle = await open(join(dir, name), 'r+');
    const link = new Uint8Array(16);
    link[4] = 0x05;
    new DataView(link.buffer).setUint32(8, 0, true); // relative to the extended start: the first EBR
    new DataView(link.buffer).setUint32(12, 4096, true);
    await handle.write(link, 0, 16, Number(last.ebr!) * 512 + 446 + 16);
    await handle.close();
    await expect(readPartitionTable(join(dir, name))).rejects.toSatisfy((e: unknown) => isDiskwrightError(e, 'E_LOOP'));
  });
});

describe('resizePartition agrees with sfdisk', () => {
  it('grows the last logical partition and its extended container after the file grew', async () => {
    const name = await makeImage('grow.img', 8 * GiB, 'label: dos\nlabel-id: 0x000c4f2a\nstart=2048, size=15986688, type=83, bootable\nstart=15990782, size=784386, type=5\nstart=15990784, size=784384, type=82\n');
    const path = join(dir, name);
    await truncate(path, 10 * GiB);
    const newSize = BigInt((10 * GiB) / 512) - 15990784n;
    const table = await resizePartition(path, 5, newSize);
    expect(table.partitions.map((p) => [p.number, p.start, p.size])).toEqual([
      [1, 2048n, 15986688n],
      [2, 15990782n, newSize + 2n],
      [5, 15990784n, newSize],
    ]);
    await expectSameAsSfdisk(name);
    const verify = await sfdisk(['-V', name]);
    expect(verify.stdout).toContain('No errors detected');
  });

  it('grows the last logical partition of a longer chain (extended container and previous EBR link updated)', async () => {
    const name = await makeImage('grow3.img', 64 * MiB, 'label: dos\nstart=2048, size=2048, type=83\nstart=8192, size=14336, type=5\nstart=10240, size=2048, type=83\nstart=20480, size=2048, type=83\n');
    await truncate(join(dir, name), 128 * MiB);
    const table = await resizePartition(join(dir, name), 6, 100000n);
    const dump = (await sfdisk(['-d', name])).stdout;
    expect(dump).toContain('grow3.img6 : start=       20480, size=      100000, type=83');
    expect(dump).toContain('grow3.img2 : start=        8192, size=      112288, type=5');
    expect((await sfdisk(['-V', name])).stdout).toContain('No errors detected');
    // The link entry in EBR 5 spans EBR 6 through the end of partition 6, as sfdisk writes it.
    const [p5, p6] = table.partitions.filter((p) => p.kind === 'logical');
    const handle = await open(join(dir, name), 'r');
    const entry = new Uint8Array(16);
    await handle.read(entry, 0, 16, Number(p5!.ebr!) * 512 + 446 + 16);
    await handle.close();
    const view = new DataView(entry.buffer);
    expect(view.getUint32(8, true)).toBe(Number(p6!.ebr! - 8192n));
    expect(view.getUint32(12, true)).toBe(Number(20480n + 100000n - p6!.ebr!));
  });

  it('grows the last GPT partition and moves the backup GPT to the new end', async () => {
    const name = await makeImage('grow-gpt.img', GiB, 'label: gpt\nlabel-id: 01234567-89AB-CDEF-0123-456789ABCDEF\nsize=20480, name="boot"\nsize=100000, name="root"\n');
    const path = join(dir, name);
    await truncate(path, 2 * GiB);
    const before = await sfdisk(['--json', name]);
    expect(before.stderr).toMatch(/backup GPT table is not on the end/);
    const table = await resizePartition(path, 2, BigInt((2 * GiB) / 512) - 34n - 22528n);
    expect(table.warnings).toEqual([]);
    const after = await sfdisk(['--json', name]);
    expect(after.stderr).toBe('');
    expect(formatSfdiskJson(table, name)).toBe(after.stdout);
    expect((await sfdisk(['-V', name])).stdout).toContain('No errors detected');
    await expectSameAsSfdisk(name);
  });

  it('refuses to grow a partition that is not the last one', async () => {
    const name = await makeImage('notlast.img', 64 * MiB, 'label: dos\nstart=2048, size=2048, type=83\nstart=8192, size=2048, type=83\n');
    await expect(resizePartition(join(dir, name), 1, 4096n)).rejects.toSatisfy((e: unknown) => isDiskwrightError(e, 'E_INVALID_ARGUMENT'));
  });
});
