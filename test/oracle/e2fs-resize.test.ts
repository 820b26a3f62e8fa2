import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeE2fsPool, growFilesystem, resizeImage } from '../../src/e2fs/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { FAKE_TIME, FIXED_SEED, FIXED_UUID, host, hostEnv, makeTree, sparseFile } from '../unit/e2fs/host.js';

let dir: string;
let tree: string;
const GiB = 2 ** 30;

beforeAll(async () => {
  await requireTool('resize2fs', 'e2fsprogs');
  await requireTool('sfdisk', 'fdisk');
  await requireTool('cmp', 'diffutils');
  dir = await tempDir();
  tree = join(dir, 'tree');
  await makeTree(tree, 4, 8);
});

afterAll(async () => {
  await closeE2fsPool();
});

async function setSize(path: string, size: number): Promise<void> {
  const handle = await open(path, 'r+');
  await handle.truncate(size);
  await handle.close();
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  return (await execa('cmp', ['-s', a, b], { reject: false })).exitCode === 0;
}

async function blockCount(image: string): Promise<number> {
  const dump = await host('dumpe2fs', ['-h', image]);
  return Number(/Block count:\s+(\d+)/.exec(dump.stdout)![1]);
}

describe('resize2fs across the 4 GiB boundary', () => {
  it('2 → 10 GiB is byte-identical to host resize2fs, checks clean and has the right block count', { timeout: 240_000 }, async () => {
    // Two identical sparse 2 GiB filesystems (fixed UUID, seed and clock); copying would
    // write gigabytes of zeros.
    const hostCopy = join(dir, 'grow-host.img');
    const ours = join(dir, 'grow-wasm.img');
    for (const image of [hostCopy, ours]) {
      await sparseFile(image, 2 * GiB);
      expect((await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED}`, '-d', tree, image])).exitCode).toBe(0);
    }
    expect(await sameBytes(ours, hostCopy)).toBe(true);
    await setSize(hostCopy, 10 * GiB);
    await setSize(ours, 10 * GiB);
    expect((await host('resize2fs', [hostCopy])).exitCode).toBe(0);
    const result = await growFilesystem(ours, { fakeTime: FAKE_TIME });
    expect(result.oldBlocksCount).toBe(524288n);
    expect(result.blocksCount).toBe(2621440n);
    expect((await host('e2fsck', ['-fn', ours])).exitCode).toBe(0);
    expect(await blockCount(ours)).toBe(2621440);
    expect(await sameBytes(ours, hostCopy)).toBe(true);
    const cat = await host('debugfs', ['-R', 'cat /dir1/file3.txt', ours]);
    expect(cat.exitCode).toBe(0);
    expect(cat.stdout.length).toBeGreaterThan(0);
  });
});

async function sfdisk(image: string, script: string): Promise<void> {
  await execa('sfdisk', ['--no-reread', '--no-tell-kernel', image], { input: script, env: hostEnv() });
}

async function sfdiskJson(image: string): Promise<{ partitiontable: { partitions: { node: string; start: number; size: number }[] } }> {
  return JSON.parse((await execa('sfdisk', ['--json', image], { env: hostEnv() })).stdout);
}

async function extract(image: string, start: number, sectors: number, out: string): Promise<void> {
  await execa('dd', [`if=${image}`, `of=${out}`, 'bs=512', `skip=${start}`, `count=${sectors}`, 'conv=sparse', 'status=none']);
  // conv=sparse skips trailing zeros without extending the file.
  await setSize(out, sectors * 512);
}

describe('resize inside a partition of a disk image', () => {
  it('grows a logical partition, its extended container and its filesystem; host tools agree on the extracted partition', { timeout: 120_000 }, async () => {
    const disk = join(dir, 'dos.img');
    await sparseFile(disk, 64 << 20);
    await sfdisk(disk, 'label: dos\nstart=2048, size=16MiB, type=83\nstart=34816, type=5\nstart=36864, type=83\n');
    const before = (await sfdiskJson(disk)).partitiontable.partitions.find((p) => p.node.endsWith('5'))!;
    const made = await host('mke2fs', ['-q', '-F', '-t', 'ext3', '-d', tree, '-E', `offset=${before.start * 512}`, disk, `${(before.size * 512) / 1024}k`]);
    expect(made.exitCode).toBe(0);

    const result = await resizeImage(disk, { size: 256 << 20, partition: 5 });
    const table = (await sfdiskJson(disk)).partitiontable.partitions;
    const p5 = table.find((p) => p.node.endsWith('5'))!;
    const extended = table.find((p) => p.node.endsWith('2'))!;
    expect(p5.start).toBe(before.start);
    expect(p5.start + p5.size).toBe((256 << 20) / 512);
    expect(extended.start + extended.size).toBe((256 << 20) / 512);
    expect(result.partitionSectors).toBe(BigInt(p5.size));

    const part = join(dir, 'p5.img');
    await extract(disk, p5.start, p5.size, part);
    expect((await host('e2fsck', ['-fn', part])).exitCode).toBe(0);
    const blockSize = Number(/Block size:\s+(\d+)/.exec((await host('dumpe2fs', ['-h', part])).stdout)![1]);
    expect(await blockCount(part)).toBe(Math.floor((p5.size * 512) / blockSize));
    expect(BigInt(await blockCount(part))).toBe(result.blocksCount);
  });

  it('grows the last GPT partition and moves the backup table to the new end', { timeout: 120_000 }, async () => {
    const disk = join(dir, 'gpt.img');
    await sparseFile(disk, 64 << 20);
    await sfdisk(disk, 'label: gpt\nstart=2048, size=8MiB\nstart=18432, size=20MiB\n');
    const json = await sfdiskJson(disk);
    expect(json.partitiontable.partitions).toHaveLength(2);
    const before = json.partitiontable.partitions[1]!;
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', `offset=${before.start * 512}`, disk, `${(before.size * 512) / 1024}k`])).exitCode).toBe(0);

    await resizeImage(disk, { size: 160 << 20, partition: 2 });
    const verify = await execa('sfdisk', ['--verify', disk], { env: hostEnv(), reject: false });
    expect(verify.stdout).toContain('No errors detected');
    const p2 = (await sfdiskJson(disk)).partitiontable.partitions[1]!;
    expect(p2.start + p2.size - 1).toBe((160 << 20) / 512 - 34);
    const part = join(dir, 'gpt-p2.img');
    await extract(disk, p2.start, p2.size, part);
    expect((await host('e2fsck', ['-fn', part])).exitCode).toBe(0);
    const blockSize = Number(/Block size:\s+(\d+)/.exec((await host('dumpe2fs', ['-h', part])).stdout)![1]);
    expect(await blockCount(part)).toBe(Math.floor((p2.size * 512) / blockSize));
  });

  it('refuses to shrink a partition and leaves the image as it was', async () => {
    const disk = join(dir, 'dos.img');
    await expect(resizeImage(disk, { size: 128 << 20, partition: 5 })).rejects.toThrow(/refusing to shrink/);
    expect((await sfdiskJson(disk)).partitiontable.partitions.find((p) => p.node.endsWith('5'))!.start).toBe(36864);
  });
});
