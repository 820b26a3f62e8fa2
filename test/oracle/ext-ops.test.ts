import { writeFile as hostWriteFile, mkdir as hostMkdir, symlink as hostSymlink, readFile as hostReadFile, readlink as hostReadlink, stat as hostStatFile, chmod as hostChmod } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem, type FilesystemSession } from '../../src/ext/index.js';
import { isDiskwrightError } from '../../src/errors.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV, hostCat, hostFsck, hostLs, hostStat, makeExtImage, sha256 } from '../unit/ext/ext-images.js';

const KINDS = [
  { name: 'ext2', type: 'ext2' as const, extra: [] },
  { name: 'ext3', type: 'ext3' as const, extra: [] },
  { name: 'ext4 (mke2fs 1.47 defaults, metadata_csum)', type: 'ext4' as const, extra: [] },
  { name: 'ext4 with 1 KiB blocks, orphan_file and metadata_csum_seed', type: 'ext4' as const, extra: ['-b', '1024', '-O', 'orphan_file,metadata_csum_seed'] },
];

let dir: string;
beforeAll(async () => {
  await requireTool('debugfs', 'e2fsprogs');
  await requireTool('e2fsck', 'e2fsprogs');
  dir = await tempDir();
});

describe.each(KINDS)('file operations on $name', ({ type, extra, name }) => {
  it('writes files, directories, symlinks, modes, owners and times that host debugfs reads back and e2fsck accepts', async () => {
    const image = join(dir, `${name.replace(/\W+/g, '_')}.img`);
    await makeExtImage(image, type, '64M', extra);
    const payload = Buffer.alloc(3 * 1024 * 1024 + 123);
    for (let i = 0; i < payload.length; i += 1) payload[i] = (i * 7 + (i >> 11)) & 0xff;
    const when = new Date('2021-03-04T05:06:07.500Z');
    await withFilesystem(image, { write: true }, async (fs) => {
      await fs.mkdir('/etc/network', { parents: true });
      await fs.writeFile('/etc/hostname', 'HOSTNAME-TMPL\n', { mode: 0o640, uid: 1000, gid: 1001 });
      await fs.writeFile('/etc/network/interfaces', 'auto lo\n');
      await fs.writeFile('/etc/network/interfaces', 'auto eth0\n'); // replace
      await fs.writeFile('/big.bin', payload);
      await fs.symlink('/etc/hostname', '/etc/hn-link', { uid: 5, gid: 6 });
      await fs.mkdir('/a/b/c', { parents: true, mode: 0o700 });
      await fs.writeFile('/a/b/c/x', 'x');
      await fs.rename('/a/b/c/x', '/a/moved');
      await fs.rename('/a/b', '/a/b2');
      await fs.chmod('/a/moved', 0o4755);
      await fs.chown('/a/moved', 42, 43);
      await fs.utimes('/etc/hostname', when, when);
      await fs.writeFile('/gone', 'bye');
      await fs.rm('/gone');
      await fs.mkdir('/tree/sub', { parents: true });
      await fs.writeFile('/tree/sub/f', 'f');
      await fs.rm('/tree', { recursive: true });
      expect(await fs.exists('/tree')).toBe(false);
      expect((await fs.stat('/etc/hostname')).mtime.getTime()).toBe(when.getTime());
    });
    const fsck = await hostFsck(image);
    expect(fsck.output).not.toMatch(/Fix\?|WARNING|Corrupt|invalid/i);
    expect(fsck.exitCode).toBe(0);
    expect((await hostCat(image, '/etc/hostname')).toString()).toBe('HOSTNAME-TMPL\n');
    expect((await hostCat(image, '/etc/network/interfaces')).toString()).toBe('auto eth0\n');
    expect((await hostCat(image, '/big.bin')).equals(payload)).toBe(true);
    expect((await hostCat(image, '/a/moved')).toString()).toBe('x');
    const hn = await hostStat(image, '/etc/hostname');
    expect(hn).toMatchObject({ type: 'regular', mode: 0o640, uid: 1000, gid: 1001, size: 14, mtime: Math.floor(when.getTime() / 1000) });
    expect(await hostStat(image, '/a/moved')).toMatchObject({ mode: 0o4755, uid: 42, gid: 43 });
    const link = await hostStat(image, '/etc/hn-link');
    expect(link).toMatchObject({ type: 'symlink', uid: 5, gid: 6 });
    expect(link.text).toContain('Fast link dest: "/etc/hostname"');
    expect(await hostStat(image, '/a/b2/c')).toMatchObject({ type: 'directory', mode: 0o700 });
    expect((await hostLs(image, '/')).sort()).toEqual(['a', 'big.bin', 'etc', 'lost+found']);
  });

  it('reads back what host mke2fs -d put in: ls with modes, owners, sizes and symlink targets, cat and stat', async () => {
    const src = join(dir, `src-${name.replace(/\W+/g, '_')}`);
    await hostMkdir(join(src, 'etc'), { recursive: true });
    await hostWriteFile(join(src, 'etc', 'motd'), 'hello from the host\n');
    await hostChmod(join(src, 'etc', 'motd'), 0o600);
    await hostSymlink('../etc/motd', join(src, 'motd-link'));
    const image = join(dir, `${name.replace(/\W+/g, '_')}-d.img`);
    await execa('truncate', ['-s', '64M', image]);
    await execa('mke2fs', ['-q', '-F', '-t', type, ...extra, '-d', src, image], { env: SBIN_ENV });
    await withFilesystem(image, {}, async (fs) => {
      const entries = await fs.readdir('/');
      expect(entries.map((e) => e.name)).toEqual(['etc', 'lost+found', 'motd-link']);
      const link = entries.find((e) => e.name === 'motd-link')!;
      expect(link).toMatchObject({ kind: 'symlink', linkTarget: '../etc/motd' });
      const motd = await fs.lstat('/etc/motd');
      const host = await hostStat(image, '/etc/motd');
      expect(motd).toMatchObject({ kind: 'file', mode: host.mode, uid: host.uid, gid: host.gid, size: host.size });
      expect(Buffer.from(await fs.readFile('/etc/motd')).equals(await hostCat(image, '/etc/motd'))).toBe(true);
      expect(await fs.readText('/motd-link')).toBe('hello from the host\n');
      await expect(fs.writeFile('/x', 'y')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    });
  });
});

describe('all-or-nothing sessions', () => {
  it('leaves the image byte-identical when the callback throws midway', async () => {
    const image = join(dir, 'throw.img');
    await makeExtImage(image, 'ext4');
    await withFilesystem(image, { write: true }, async (fs) => fs.writeFile('/keep', 'keep'));
    const before = await sha256(image);
    await expect(
      withFilesystem(image, { write: true }, async (fs) => {
        await fs.writeFile('/new', Buffer.alloc(2 * 1024 * 1024, 1));
        await fs.rm('/keep');
        await fs.mkdir('/d/e', { parents: true });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await sha256(image)).toBe(before);
    expect((await hostCat(image, '/keep')).toString()).toBe('keep');
  });

  it('leaves the image byte-identical when aborted through the signal', async () => {
    const image = join(dir, 'abort.img');
    await makeExtImage(image, 'ext3');
    const before = await sha256(image);
    const controller = new AbortController();
    await expect(
      withFilesystem(image, { write: true, signal: controller.signal }, async (fs) => {
        await fs.writeFile('/a', 'a');
        controller.abort();
        await fs.writeFile('/b', 'b');
      }),
    ).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(await sha256(image)).toBe(before);
  });

  it('rejects `..` escapes and reports missing files as E_NOT_FOUND', async () => {
    const image = join(dir, 'paths.img');
    await makeExtImage(image, 'ext2');
    await withFilesystem(image, {}, async (fs) => {
      await expect(fs.readFile('/../etc/passwd')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
      await expect(fs.stat('a/../../b')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
      const error = await fs.readFile('/no/such/file').catch((e: unknown) => e);
      expect(isDiskwrightError(error, 'E_NOT_FOUND')).toBe(true);
    });
  });
});

describe('safety checks', () => {
  it('refuses to write when the journal needs recovery, and still reads', async () => {
    const image = join(dir, 'recover.img');
    await makeExtImage(image, 'ext3');
    await execa('debugfs', ['-w', '-R', 'feature needs_recovery', image], { env: SBIN_ENV });
    await expect(withFilesystem(image, { write: true }, async () => undefined)).rejects.toMatchObject({
      code: 'E_NEEDS_RECOVERY',
      hint: expect.stringContaining(`diskwright fsck --fix ${image}`),
    });
    await expect(withFilesystem(image, {}, async (fs) => (await fs.readdir('/')).map((e) => e.name))).resolves.toEqual(['lost+found']);
  });

  it('refuses an incompatible feature libext2fs 1.44 does not know (casefold)', async () => {
    const image = join(dir, 'casefold.img');
    await makeExtImage(image, 'ext4', '64M', ['-O', 'casefold']);
    await expect(withFilesystem(image, {}, async () => undefined)).rejects.toMatchObject({ code: 'E_UNSUPPORTED_FEATURE' });
  });

  it('reports a file that is not an ext filesystem as E_BAD_SIGNATURE', async () => {
    const image = join(dir, 'zero.img');
    await execa('truncate', ['-s', '4M', image]);
    await expect(withFilesystem(image, {}, async () => undefined)).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' });
  });
});

describe('copy in and out', () => {
  it('copies a host tree in (modes, symlinks, owners from options) and back out identically', async () => {
    const src = join(dir, 'tree-src');
    await hostMkdir(join(src, 'bin'), { recursive: true });
    await hostMkdir(join(src, 'empty'));
    await hostWriteFile(join(src, 'bin', 'tool'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    await hostWriteFile(join(src, 'data'), Buffer.alloc(1500000, 9), { mode: 0o600 });
    await hostSymlink('bin/tool', join(src, 'tool-link'));
    const image = join(dir, 'tree.img');
    await makeExtImage(image, 'ext4');
    await withFilesystem(image, { write: true }, async (fs) => {
      const summary = await fs.copyIn(src, '/opt/app', { uid: 100, gid: 200 });
      expect(summary).toMatchObject({ files: 2, directories: 2, symlinks: 1, bytes: 1500000 + 18 });
    });
    expect((await hostFsck(image)).exitCode).toBe(0);
    expect(await hostStat(image, '/opt/app/bin/tool')).toMatchObject({ mode: 0o755, uid: 100, gid: 200 });
    expect(await hostStat(image, '/opt/app/data')).toMatchObject({ mode: 0o600, size: 1500000 });
    expect((await hostCat(image, '/opt/app/data')).equals(Buffer.alloc(1500000, 9))).toBe(true);
    const out = join(dir, 'tree-out');
    await withFilesystem(image, {}, async (fs) => {
      const chunks: Uint8Array[] = [];
      expect(await fs.readFileChunks!('/opt/app/data', (c) => void chunks.push(Buffer.from(c)))).toBe(1500000);
      expect(chunks.length).toBe(2);
      expect(Buffer.concat(chunks).equals(Buffer.alloc(1500000, 9))).toBe(true);
      await fs.copyOut('/opt/app', out);
      await expect(fs.copyOut('/opt/app', out)).rejects.toMatchObject({ code: 'E_EXISTS' });
    });
    expect(await hostReadFile(join(out, 'bin', 'tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect((await hostStatFile(join(out, 'bin', 'tool'))).mode & 0o7777).toBe(0o755);
    expect(await hostReadlink(join(out, 'tool-link'))).toBe('bin/tool');
    expect((await hostStatFile(join(out, 'empty'))).isDirectory()).toBe(true);
  });
});

describe('filesystems inside a partitioned disk image', () => {
  it('opens partition N of an MBR disk, writes there only, and host tools agree through ?offset=', async () => {
    await requireTool('sfdisk', 'fdisk');
    const disk = join(dir, 'disk.img');
    await execa('truncate', ['-s', '96M', disk]);
    await execa('sfdisk', ['-q', disk], { input: 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, type=83\n', env: SBIN_ENV });
    const offset = 43008 * 512;
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', `offset=${offset}`, disk, `${(96 * 1024 * 1024 - offset) / 1024}k`], { env: SBIN_ENV });
    const headBefore = (await hostReadFile(disk)).subarray(0, offset);
    await withFilesystem(disk, { write: true, partition: 2 }, async (fs) => {
      await fs.writeFile('/etc/hostname', 'in-partition-2\n', { parents: true });
    });
    expect((await hostReadFile(disk)).subarray(0, offset).equals(headBefore)).toBe(true);
    const spec = `${disk}?offset=${offset}`;
    expect((await hostFsck(spec)).exitCode).toBe(0);
    expect((await hostCat(spec, '/etc/hostname')).toString()).toBe('in-partition-2\n');
    await expect(withFilesystem(disk, { partition: 1 }, async () => undefined)).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' });
    await expect(withFilesystem(disk, { partition: 7 }, async () => undefined)).rejects.toMatchObject({ code: 'E_NO_PARTITION' });
  });
});

describe('journal replay on request', () => {
  it('replays a journal that needs recovery with the WASM e2fsck when replayJournal is set, then writes', async () => {
    const image = join(dir, 'replay.img');
    await makeExtImage(image, 'ext3');
    await execa('debugfs', ['-w', '-R', 'feature needs_recovery', image], { env: SBIN_ENV });
    await withFilesystem(image, { write: true, replayJournal: true }, async (fs) => fs.writeFile('/after-replay', 'ok'));
    expect((await hostFsck(image)).exitCode).toBe(0);
    expect((await hostCat(image, '/after-replay')).toString()).toBe('ok');
  });
});

describe('host I/O failures', () => {
  it('reports an unwritable image directory as a one-line E_IO error and leaves the image as it was', async () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions; simulate with an undo log path that is a directory.
      const image = join(dir, 'ro.img');
      await makeExtImage(image, 'ext2');
      const before = await sha256(image);
      await hostMkdir(`${image}.diskwright-undo-blocker`);
      await execa('ln', ['-s', `${image}.diskwright-undo-blocker`, `${image}.diskwright-undo`]);
      const error = await withFilesystem(image, { write: true }, (fs) => fs.writeFile('/x', 'x')).catch((e: unknown) => e);
      expect(isDiskwrightError(error)).toBe(true);
      expect(await sha256(image)).toBe(before);
      return;
    }
    const sub = join(dir, 'rodir');
    await hostMkdir(sub);
    const image = join(sub, 'ro.img');
    await makeExtImage(image, 'ext2');
    const before = await sha256(image);
    await hostChmod(sub, 0o555);
    try {
      const error = await withFilesystem(image, { write: true }, (fs) => fs.writeFile('/x', 'x')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'E_IO' });
      expect((error as Error).message).not.toContain('\n');
      expect(await sha256(image)).toBe(before);
    } finally {
      await hostChmod(sub, 0o755);
    }
  });
});

describe('session lifetime', () => {
  it('waits for an operation the callback forgot to await, refuses use after close, and refuses a second session on the same image', async () => {
    const image = join(dir, 'lifetime.img');
    await makeExtImage(image, 'ext4');
    let leaked: FilesystemSession | undefined;
    await withFilesystem(image, { write: true }, async (fs) => {
      leaked = fs;
      void fs.writeFile('/not-awaited', 'still committed');
      await expect(withFilesystem(image, {}, async () => undefined)).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    });
    expect((await hostCat(image, '/not-awaited')).toString()).toBe('still committed');
    await expect(leaked!.readFile('/not-awaited')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    expect((await hostFsck(image)).exitCode).toBe(0);
  });
});
