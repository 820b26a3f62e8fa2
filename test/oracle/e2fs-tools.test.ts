import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeE2fsPool, dumpFilesystemHeader, headerNeedsRecovery, parseDumpe2fsHeader, runE2fsTool, tuneFilesystem } from '../../src/e2fs/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { FAKE_TIME, FIXED_SEED, FIXED_UUID, host, makeTree, sparseFile } from '../unit/e2fs/host.js';

let dir: string;
let base: string;

beforeAll(async () => {
  await requireTool('tune2fs', 'e2fsprogs');
  dir = await tempDir();
  const tree = join(dir, 'tree');
  await makeTree(tree, 3, 5);
  base = join(dir, 'base.img');
  await sparseFile(base, 96 << 20);
  expect((await host('mke2fs', ['-q', '-F', '-t', 'ext3', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED}`, '-d', tree, base])).exitCode).toBe(0);
});

afterAll(async () => {
  await closeE2fsPool();
});

describe('tune2fs', () => {
  it.each([
    [['-L', 'rootfs', '-c', '25', '-i', '2w']],
    [['-U', '7c1e6b0a-1111-4222-8333-944445555666', '-e', 'remount-ro']],
    [['-O', 'extent,huge_file,dir_nlink,extra_isize', '-r', '1000']],
  ])('%j changes the image exactly as host tune2fs does', async (args) => {
    const hostCopy = join(dir, 'tune-host.img');
    const ours = join(dir, 'tune-wasm.img');
    await copyFile(base, hostCopy);
    await copyFile(base, ours);
    const expected = await host('tune2fs', [...args, hostCopy]);
    expect(expected.exitCode).toBe(0);
    await tuneFilesystem(ours, { args, fakeTime: FAKE_TIME });
    expect(Buffer.compare(await readFile(ours), await readFile(hostCopy))).toBe(0);
  });

  it('reports a refused change as E_EXTFS with tune2fs’s reason', async () => {
    const ours = join(dir, 'tune-bad.img');
    await copyFile(base, ours);
    await expect(tuneFilesystem(ours, { args: ['-L', 'x', '-O', 'no_such_feature'] })).rejects.toMatchObject({ code: 'E_EXTFS' });
    expect(Buffer.compare(await readFile(ours), await readFile(base))).toBe(0);
  });
});

describe('dumpe2fs -h', () => {
  it('gives the same fields as host dumpe2fs -h', async () => {
    const expected = parseDumpe2fsHeader((await host('dumpe2fs', ['-h', base])).stdout);
    const actual = await dumpFilesystemHeader(base);
    expect(actual).toEqual(expected);
    expect(actual['Filesystem UUID']).toBe(FIXED_UUID);
    expect(Object.keys(actual).length).toBeGreaterThan(40);
  });

  it('reads a filesystem at a byte offset inside a disk image', async () => {
    const disk = join(dir, 'disk.img');
    await sparseFile(disk, 64 << 20);
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'inner', '-E', 'offset=1048576', disk, '32768k'])).exitCode).toBe(0);
    const fields = await dumpFilesystemHeader(disk, { offset: 1048576 });
    expect(fields['Filesystem volume name']).toBe('inner');
    await expect(dumpFilesystemHeader(disk, { offset: 4096 })).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' });
  });

  it('reports a journal that needs recovery', async () => {
    const dirty = join(dir, 'dirty.img');
    await copyFile(base, dirty);
    expect((await host('debugfs', ['-w', '-R', 'feature needs_recovery', dirty])).exitCode).toBe(0);
    expect(headerNeedsRecovery(await dumpFilesystemHeader(dirty))).toBe(true);
    expect(headerNeedsRecovery(await dumpFilesystemHeader(base))).toBe(false);
    const before = await readFile(dirty);
    await expect(tuneFilesystem(dirty, { args: ['-L', 'changed'] })).rejects.toMatchObject({ code: 'E_NEEDS_RECOVERY' });
    expect(Buffer.compare(await readFile(dirty), before)).toBe(0);
  });
});

describe('debugfs', () => {
  it('reads a file out of the image like host debugfs', async () => {
    const ours = await runE2fsTool('debugfs', ['-R', 'cat /dir1/file4.txt', base]);
    const expected = await host('debugfs', ['-R', 'cat /dir1/file4.txt', base]);
    expect(ours.exitCode).toBe(0);
    expect(ours.stdout).toBe(expected.stdout);
    expect(ours.stdout.length).toBeGreaterThan(100);
  });
});
