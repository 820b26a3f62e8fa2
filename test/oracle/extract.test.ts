import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { extractPartition } from '../../src/io/extract.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const MiB = 1 << 20;
let dir: string;

beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  await requireTool('dd', 'coreutils');
  await requireTool('cmp', 'diffutils');
  await requireTool('mke2fs', 'e2fsprogs');
  await requireTool('e2fsck', 'e2fsprogs');
  dir = await tempDir('diskwright-extract-');
});

interface SfdiskPart {
  node: string;
  start: number;
  size: number;
  type: string;
}

/** A sparse image partitioned by sfdisk, with random data islands and zero stretches in every partition. */
async function makeDisk(name: string, sizeMiB: number, script: string): Promise<{ image: string; parts: SfdiskPart[] }> {
  const image = join(dir, name);
  const handle = await open(image, 'w');
  await handle.truncate(sizeMiB * MiB);
  await handle.close();
  await execa('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', image], { input: script, env });
  const parts = (JSON.parse((await execa('sfdisk', ['--json', image], { env })).stdout) as { partitiontable: { partitions: SfdiskPart[] } }).partitiontable.partitions;
  const writer = await open(image, 'r+');
  try {
    for (const p of parts) {
      if (['5', 'f', '85'].includes(p.type)) continue;
      const start = p.start * 512;
      const length = p.size * 512;
      // first and last sector, a few odd-sized islands, one straddling 4 KiB blocks
      const spots = [[0, 512], [length - 512, 512], [4096 * 3 + 100, 9000], [Math.floor(length / 3), 70_000], [Math.floor(length / 2) + 7, 1]];
      for (const [at, n] of spots) await writer.write(randomBytes(n!), 0, n!, start + at!);
    }
  } finally {
    await writer.close();
  }
  return { image, parts };
}

async function allocated(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

async function expectLikeDd(image: string, part: SfdiskPart, number: number): Promise<void> {
  const out = join(dir, `p${number}-${Date.now()}`);
  const ref = `${out}.dd`;
  const sparseRef = `${out}.sparse`;
  const summary = await extractPartition(image, number, out);
  await execa('dd', [`if=${image}`, `of=${ref}`, 'bs=512', `skip=${part.start}`, `count=${part.size}`, 'status=none']);
  await execa('cp', ['--sparse=always', ref, sparseRef]);
  const cmp = await execa('cmp', [ref, out], { reject: false });
  expect(cmp.exitCode, `${image} p${number}: ${cmp.stdout}`).toBe(0);
  expect(summary.bytes).toBe(part.size * 512);
  // As sparse as the best the coreutils can do on the same bytes (two blocks of slack: the host
  // filesystem may need an extent-tree block for one file and not the other).
  expect(await allocated(out)).toBeLessThanOrEqual((await allocated(sparseRef)) + 2 * 4096);
  expect(summary.dataBytes).toBeLessThanOrEqual(await allocated(sparseRef));
  await Promise.all([out, ref, sparseRef].map((p) => rm(p)));
}

describe('extractPartition is byte-identical to dd bs=512 skip count', () => {
  it('on a dos disk with primaries, a gap and a chain of logical partitions at odd sectors', async () => {
    const script = [
      'label: dos',
      'start=2048, size=20480, type=83, bootable',
      'start=30000, size=60000, type=5',
      'start=30063, size=10001, type=83', // logical 5 at an odd, non-4K sector
      'start=45000, size=8192, type=82',
      'start=60001, size=29999, type=83',
      'start=92160, size=8191, type=c',
      '',
    ].join('\n');
    const { image, parts } = await makeDisk('dos.img', 64, script);
    const numbers = parts.map((p) => Number(/(\d+)$/.exec(p.node)![1]));
    expect(numbers).toEqual([1, 2, 3, 5, 6, 7]);
    for (const [i, p] of parts.entries()) await expectLikeDd(image, p, numbers[i]!);
  });

  it('on a gpt disk', async () => {
    const script = ['label: gpt', 'start=2048, size=16384, name="boot"', 'start=20480, size=40001, name="root"', 'start=65536, size=32768, name="data"', ''].join('\n');
    const { image, parts } = await makeDisk('gpt.img', 64, script);
    for (const [i, p] of parts.entries()) await expectLikeDd(image, p, i + 1);
  });

  it('with --only-used gives an e2fsck-clean filesystem with the same allocation, reading only allocated blocks', async () => {
    const { image, parts } = await makeDisk('fs.img', 96, ['label: dos', 'start=2048, size=180224, type=83', ''].join('\n'));
    const p1 = parts[0]!;
    // Dirty free space first (stale bytes), then a filesystem over it.
    const writer = await open(image, 'r+');
    await writer.write(Buffer.alloc(8 * MiB, 0xaa), 0, 8 * MiB, p1.start * 512 + 40 * MiB);
    await writer.close();
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', `offset=${p1.start * 512},nodiscard`, image, `${(p1.size * 512) / 1024}k`], { env });
    const out = join(dir, 'only-used.img');
    const summary = await extractPartition(image, 1, out, { onlyUsed: true });
    expect(summary.mode).toBe('only-used');
    expect(summary.readBytes).toBeLessThan(summary.bytes / 2);
    const fsck = await execa('e2fsck', ['-fn', out], { env, reject: false });
    expect(fsck.exitCode, fsck.stdout).toBe(0);
    const full = join(dir, 'full.img');
    await extractPartition(image, 1, full);
    const freeOf = async (path: string) => (await execa('dumpe2fs', [path], { env })).stdout.match(/Free blocks: .*/g)!.join('\n');
    expect(await freeOf(out)).toBe(await freeOf(full));
    // The stale 0xaa bytes in free space are gone: fewer allocated bytes than the full copy.
    expect(await allocated(out)).toBeLessThan(await allocated(full));
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
