import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeE2fsPool, makeFilesystem, type FilesystemType } from '../../src/e2fs/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { allocatedBytes, FAKE_TIME, FIXED_SEED, FIXED_UUID, host, makeTree, sparseFile } from '../unit/e2fs/host.js';

let dir: string;
let tree: string;

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  dir = await tempDir();
  tree = join(dir, 'tree');
  await makeTree(tree, 6, 10);
});

afterAll(async () => {
  await closeE2fsPool();
});

const SIZE = 128 << 20;

describe.each(['ext2', 'ext3', 'ext4'] as FilesystemType[])('mke2fs -t %s', (type) => {
  it.each([false, true])('with -d: %s is byte-identical to host mke2fs with the same UUID, hash seed and clock', async (fromDir) => {
    const hostImage = join(dir, `${type}-${fromDir}-host.img`);
    const ours = join(dir, `${type}-${fromDir}-wasm.img`);
    await sparseFile(hostImage, SIZE);
    const made = await host('mke2fs', ['-F', '-t', type, '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED}`, ...(fromDir ? ['-d', tree] : []), hostImage, `${SIZE / 1024}k`]);
    expect(made.exitCode).toBe(0);
    await makeFilesystem(ours, { type, size: SIZE, uuid: FIXED_UUID, hashSeed: FIXED_SEED, fakeTime: FAKE_TIME, ...(fromDir ? { fromDirectory: tree } : {}) });
    expect(Buffer.compare(await readFile(ours), await readFile(hostImage))).toBe(0);
    expect((await host('e2fsck', ['-fn', ours])).exitCode).toBe(0);
    if (fromDir) {
      const cat = await host('debugfs', ['-R', 'cat /dir3/file7.txt', ours]);
      expect(cat.stdout).toBe(await readFile(join(tree, 'dir3', 'file7.txt'), 'utf8'));
    }
  });
});

describe('sparse output', () => {
  it('an 8 GiB ext4 image allocates megabytes, not gigabytes, and checks clean', async () => {
    const image = join(dir, 'big.img');
    await makeFilesystem(image, { type: 'ext4', size: 8 * 2 ** 30, label: 'big' });
    expect(await allocatedBytes(image)).toBeLessThan(32 << 20);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
  });

  it('an 8 GiB ext3 image with zeroed inode tables (nodiscard, no lazy init) stays sparse too', async () => {
    const image = join(dir, 'big3.img');
    await makeFilesystem(image, { type: 'ext3', size: 8 * 2 ** 30, extendedOptions: ['nodiscard', 'lazy_itable_init=0'] });
    expect(await allocatedBytes(image)).toBeLessThan(32 << 20);
    const dump = await host('dumpe2fs', ['-h', image]);
    expect(dump.stdout).toMatch(/Block count:\s+2097152/);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
  });
});

describe('atomic output', () => {
  it('a failing mke2fs leaves neither the target nor a temp file behind', async () => {
    const sub = join(dir, 'fail');
    const bigTree = join(dir, 'bigtree');
    await mkdir(sub);
    await mkdir(bigTree);
    await writeFile(join(bigTree, 'blob'), Buffer.alloc(3 << 20, 7));
    const image = join(sub, 'tiny.img');
    // 2 MiB cannot hold a 3 MiB file.
    await expect(makeFilesystem(image, { type: 'ext4', size: 2 << 20, fromDirectory: bigTree })).rejects.toMatchObject({ code: 'E_EXTFS' });
    expect(await readdir(sub)).toEqual([]);
  });
});
