import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { closeE2fsPool, runE2fsTool } from '../../../src/e2fs/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { FAKE_TIME, FIXED_SEED, FIXED_UUID, host, setXattrs, sparseFile } from './host.js';

afterAll(async () => {
  await closeE2fsPool();
});

const memoryDisks = fileURLToPath(new URL('./hooks/memory-disks.mjs', import.meta.url));
const env = { E2FSPROGS_FAKE_TIME: String(FAKE_TIME), E2FSCK_TIME: String(FAKE_TIME) };
const MiB = 1 << 20;

interface DiskSpec {
  path: string;
  size?: number;
  readOnly?: boolean;
  growable?: boolean;
  seedFrom?: string;
  saveTo?: string;
  closeMarker?: string;
  /** true: a plain Error; an error code: an error carrying it (as a DiskwrightError does). */
  failReads?: boolean | string;
}
interface DiskReport {
  size: number;
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  resizes: number[];
  closed: number;
}

function onDisks(disks: DiskSpec[]) {
  return { diskFactory: { module: memoryDisks, args: { disks } }, env };
}

function report(result: { diskResult?: unknown }, path: string): DiskReport {
  return (result.diskResult as { disks: Record<string, DiskReport> }).disks[path]!;
}

describe('argv[0]', () => {
  it('is the bare tool name by default and the caller’s argv0 when given', async () => {
    const plain = await runE2fsTool('e2fsck', ['-fn', '/nonexistent/diskwright.img']);
    expect(plain.stderr).toMatch(/^e2fsck: No such file or directory/m);
    const named = await runE2fsTool('e2fsck', ['-fn', '/nonexistent/diskwright.img'], { argv0: '../e2fsck/e2fsck' });
    expect(named.exitCode).toBe(8);
    expect(named.stderr).toMatch(/^\.\.\/e2fsck\/e2fsck: No such file or directory/m);
  });

  it('rejects an empty argv0', async () => {
    await expect(runE2fsTool('e2fsck', ['-V'], { argv0: '' })).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });
});

describe('direct I/O', () => {
  it('accepts O_DIRECT opens (mke2fs -D) and writes what host mke2fs -D writes', async () => {
    const dir = await tempDir();
    const ours = join(dir, 'ours.img');
    const theirs = join(dir, 'theirs.img');
    await sparseFile(ours, 8 * MiB);
    await copyFile(ours, theirs);
    const args = ['-F', '-q', '-D', '-t', 'ext4', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED}`];
    const result = await runE2fsTool('mke2fs', [...args, ours], { env });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect((await host('mke2fs', [...args, theirs])).exitCode).toBe(0);
    expect(Buffer.compare(await readFile(ours), await readFile(theirs))).toBe(0);
  });
});

describe('the disk hook', () => {
  it('serves mke2fs, e2fsck, debugfs -w, resize2fs and dumpe2fs from a Disk and never touches the host file at that path', async () => {
    const dir = await tempDir();
    const path = join(dir, 'disk.img');
    await writeFile(path, 'sentinel: the host file at the Disk path');
    const before = await stat(path);
    const made = join(dir, 'made.img');
    const hostMade = join(dir, 'host-made.img');
    const mkfsArgs = ['-F', '-q', '-t', 'ext4', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED}`];

    const mkfs = await runE2fsTool('mke2fs', [...mkfsArgs, path], onDisks([{ path, size: 64 * MiB, saveTo: made }]));
    expect(mkfs.exitCode).toBe(0);
    const mkfsReport = report(mkfs, path);
    expect(mkfsReport.writes).toBeGreaterThan(0);
    expect(mkfsReport.discards).toBeGreaterThan(0); // mke2fs discards the device: Disk.discard
    expect(mkfsReport.closed).toBe(0); // afterRun sees the Disks open; the worker closes them after
    await sparseFile(hostMade, 64 * MiB);
    expect((await host('mke2fs', [...mkfsArgs, hostMade])).exitCode).toBe(0);
    expect(Buffer.compare(await readFile(made), await readFile(hostMade))).toBe(0);

    const fsck = await runE2fsTool('e2fsck', ['-fn', path], onDisks([{ path, seedFrom: made }]));
    const hostFsck = await host('e2fsck', ['-fn', hostMade]);
    expect(fsck.exitCode).toBe(0);
    expect(fsck.stdout.replaceAll(path, 'IMG')).toBe(hostFsck.stdout.replaceAll(hostMade, 'IMG'));

    const written = join(dir, 'written.img');
    const debugfs = await runE2fsTool('debugfs', ['-w', '-R', 'mkdir /made-through-a-disk', path], onDisks([{ path, seedFrom: made, saveTo: written }]));
    expect(debugfs.exitCode).toBe(0);
    expect(report(debugfs, path).writes).toBeGreaterThan(0);
    expect((await host('debugfs', ['-R', 'ls -p /', written])).stdout).toContain('/made-through-a-disk/');
    expect((await host('e2fsck', ['-fn', written])).exitCode).toBe(0);

    // resize2fs grows a regular file by writing its last byte: a growable Disk resizes.
    const grown = join(dir, 'grown.img');
    const resize = await runE2fsTool('resize2fs', [path, '96M'], onDisks([{ path, seedFrom: written, saveTo: grown }]));
    expect(resize.exitCode).toBe(0);
    expect(report(resize, path).size).toBe(96 * MiB);
    expect((await stat(grown)).size).toBe(96 * MiB);
    const hostGrownFsck = await host('e2fsck', ['-fn', grown]);
    expect(hostGrownFsck.exitCode).toBe(0);

    const dump = await runE2fsTool('dumpe2fs', ['-h', path], onDisks([{ path, seedFrom: grown }]));
    expect(dump.exitCode).toBe(0);
    // The WASM libc has no passwd database: "user unknown" where the host says "user root".
    const owners = (text: string) => text.replace(/^(Reserved blocks [ug]id:\s+\d+) \((user|group) \w+\)$/gm, '$1');
    expect(owners(dump.stdout)).toBe(owners((await host('dumpe2fs', ['-h', grown])).stdout));
    expect(dump.stdout).toMatch(/Block count:\s+98304\n/); // 1 KiB blocks

    const after = await stat(path);
    expect(await readFile(path, 'utf8')).toBe('sentinel: the host file at the Disk path');
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.size).toBe(before.size);
  });

  it('works when no host file exists at the path, and keeps IMAGE?offset=N working', async () => {
    const dir = await tempDir();
    const path = join(dir, 'no-such-dir', 'disk.img');
    const seed = join(dir, 'seed.img');
    const saved = join(dir, 'saved.img');
    const pattern = Buffer.alloc(MiB, 0xab);
    await writeFile(seed, Buffer.concat([pattern, Buffer.alloc(32 * MiB)]));
    const mkfs = await runE2fsTool('mke2fs', ['-F', '-q', '-t', 'ext2', '-E', 'offset=1048576,nodiscard', path, '16M'], onDisks([{ path, seedFrom: seed, saveTo: saved }]));
    expect(mkfs.exitCode).toBe(0);
    const bytes = await readFile(saved);
    expect(Buffer.compare(bytes.subarray(0, MiB), pattern)).toBe(0);
    const fsck = await runE2fsTool('e2fsck', ['-fn', `${path}?offset=1048576`], onDisks([{ path, seedFrom: saved }]));
    expect(fsck.exitCode).toBe(0);
    expect(fsck.stdout).toMatch(/\/16384 blocks\n/);
    expect(existsSync(join(dir, 'no-such-dir'))).toBe(false);
  });

  it('refuses writes to a read-only Disk, and closes every Disk after the run', async () => {
    const dir = await tempDir();
    const path = join(dir, 'ro.img');
    const image = join(dir, 'image.img');
    const marker = join(dir, 'closed');
    await sparseFile(image, 16 * MiB);
    expect((await host('mke2fs', ['-F', '-q', '-t', 'ext4', image])).exitCode).toBe(0);
    const check = await runE2fsTool('e2fsck', ['-fn', path], onDisks([{ path, seedFrom: image, readOnly: true, closeMarker: marker }]));
    expect(check.exitCode).toBe(0);
    expect(await readFile(marker, 'utf8')).toBe('closed 1');
    const write = await runE2fsTool('debugfs', ['-w', '-R', 'mkdir /x', path], onDisks([{ path, seedFrom: image, readOnly: true }]));
    expect(write.stderr).toContain('Read-only file system');
  });

  it('rejects with E_IO when a Disk method throws', async () => {
    const dir = await tempDir();
    const path = join(dir, 'failing.img');
    await expect(runE2fsTool('dumpe2fs', ['-h', path], onDisks([{ path, size: 16 * MiB, failReads: true }]))).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringContaining('injected read failure'),
    });
  });

  it('rejects with the code, words and hint of a Disk method\'s own error, not a stringified copy in E_IO', async () => {
    const dir = await tempDir();
    const path = join(dir, 'damaged.img');
    const failure = await runE2fsTool('dumpe2fs', ['-h', path], onDisks([{ path, size: 16 * MiB, failReads: 'E_OUT_OF_RANGE' }])).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'E_OUT_OF_RANGE', message: 'reading the filesystem header: injected damaged read', hint: 'injected hint', offset: 1024 });
  });

  it('rejects a factory module given as a relative path', async () => {
    await expect(runE2fsTool('e2fsck', ['-V'], { diskFactory: { module: './x.mjs' } })).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });
});

describe('the tree hook', () => {
  it('lets mke2fs -d copy a tree that is not on the host, byte-identical to host mke2fs -d of the same files', async () => {
    const dir = await tempDir();
    const { makeTree } = await import('./host.js');
    const src = join(dir, 'src');
    await makeTree(src, 3, 4);
    const { symlink, link, mkdir } = await import('node:fs/promises');
    await mkdir(join(src, 'empty'));
    await link(join(src, 'dir1', 'file2.txt'), join(src, 'hardlink.txt'));
    await symlink('/absolute/target', join(src, 'abs-link'));
    await setXattrs(join(src, 'dir0', 'file0.txt'));
    // atime in the future (as makeTree does): reading must not change what the second mke2fs sees.
    const { lutimes } = await import('node:fs/promises');
    const later = new Date(Date.now() + 3_600_000);
    for (const entry of ['empty', 'abs-link']) await lutimes(join(src, entry), later, new Date('2021-05-06T07:08:09.5Z'));
    const root = join(dir, 'virtual', 'root');
    const ours = join(dir, 'ours.img');
    const theirs = join(dir, 'theirs.img');
    await sparseFile(ours, 32 * MiB);
    await copyFile(ours, theirs);
    const args = ['-F', '-q', '-t', 'ext4', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED},nodiscard`];
    const trees = fileURLToPath(new URL('./hooks/host-trees.mjs', import.meta.url));
    const factory = { module: trees, args: { trees: [{ root, dir: src }] } };
    const result = await runE2fsTool('mke2fs', [...args, '-d', root, ours], { env, treeFactory: factory, diskFactory: factory });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const calls = (result.diskResult as Record<string, Record<string, number>>)[root]!;
    expect(calls.readdir).toBeGreaterThanOrEqual(5);
    expect(calls.read).toBeGreaterThan(0);
    expect(calls.readlink).toBe(2);
    expect(existsSync(join(dir, 'virtual'))).toBe(false);
    expect((await host('mke2fs', [...args, '-d', src, theirs])).exitCode).toBe(0);
    expect(Buffer.compare(await readFile(ours), await readFile(theirs))).toBe(0);
  });
});
