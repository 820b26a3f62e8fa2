import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem } from '../../src/ext/index.js';
import { lastCommit } from '../../src/ext/with-filesystem.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV, hostFsck, hostStat, makeExtImage, sha256 } from '../unit/ext/ext-images.js';

// The targets: a 200 MiB file and a 50k-file tree go in without failure (no OOM in the
// 16 MiB WASM heap), and host e2fsck/debugfs agree afterwards. Speed lives in bench/fs-write.mjs.
const BIG = 200 * 1024 * 1024;
const FILES = 50_000;

let dir: string;
beforeAll(async () => {
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir();
});

describe('bulk writes', () => {
  it('writes a 200 MiB file that host debugfs reads back byte for byte', { timeout: 180_000 }, async () => {
    const src = join(dir, 'big.bin');
    const block = Buffer.alloc(1024 * 1024);
    const hash = createHash('sha256');
    const parts: Buffer[] = [];
    for (let i = 0; i < BIG / block.length; i += 1) {
      block.fill(i & 0xff);
      block.writeUInt32LE(i, 100);
      hash.update(block);
      parts.push(Buffer.from(block));
    }
    await writeFile(src, Buffer.concat(parts));
    parts.length = 0;
    const image = join(dir, 'big.img');
    await makeExtImage(image, 'ext4', '400M');
    await withFilesystem(image, { write: true }, (fs) => fs.putFile(src, '/srv/big.bin', { parents: true, mode: 0o600 }));
    // Into free blocks, in place (1 KiB blocks: the 4 KiB pages the data shares with a group's
    // metadata go through the overlay); the undo record holds only metadata.
    expect(lastCommit).toMatchObject({ path: 'overlay', bulk: true, directPuts: 1 });
    expect(lastCommit!.inPlaceBytes).toBeGreaterThan(BIG * 0.99);
    expect(lastCommit!.undoBytes).toBeLessThan(1024 * 1024);
    await rm(src);
    expect((await hostFsck(image)).exitCode).toBe(0);
    expect(await hostStat(image, '/srv/big.bin')).toMatchObject({ size: BIG, mode: 0o600 });
    const dumped = join(dir, 'dumped.bin');
    await execa('debugfs', ['-R', `dump /srv/big.bin ${dumped}`, image], { env: SBIN_ENV });
    const { stdout } = await execa('sha256sum', [dumped]);
    expect(stdout.split(' ')[0]).toBe(hash.digest('hex'));
    await rm(image);
  });

  it('writes a 200 MiB file into partition 2 of a disk image on the bulk path (overlay over the whole disk)', { timeout: 180_000 }, async () => {
    const src = join(dir, 'big2.bin');
    const block = Buffer.alloc(1024 * 1024);
    const hash = createHash('sha256');
    const fd = await open(src, 'w');
    for (let i = 0; i < BIG / block.length; i += 1) {
      block.fill((i * 7) & 0xff);
      block.writeUInt32LE(i, 4000);
      hash.update(block);
      await fd.write(block);
    }
    await fd.close();
    const disk = join(dir, 'disk.img');
    await execa('truncate', ['-s', '400M', disk]);
    await execa('sfdisk', ['-q', disk], { input: 'label: dos\nstart=2048, size=8192\nstart=10240, type=83\n', env: SBIN_ENV });
    const offset = 10240 * 512;
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', `offset=${offset}`, disk, `${(400 * 1024 * 1024 - offset) / 1024}k`], { env: SBIN_ENV });
    await withFilesystem(disk, { write: true, partition: 2 }, (fs) => fs.putFile(src, '/big.bin'));
    expect(lastCommit).toMatchObject({ path: 'overlay', bulk: true, directPuts: 1 });
    await rm(src);
    const spec = `${disk}?offset=${offset}`;
    expect((await hostFsck(spec)).exitCode).toBe(0);
    const dumped = join(dir, 'dumped2.bin');
    await execa('debugfs', ['-R', `dump /big.bin ${dumped}`, spec], { env: SBIN_ENV });
    const { stdout } = await execa('sha256sum', [dumped]);
    expect(stdout.split(' ')[0]).toBe(hash.digest('hex'));
    await rm(disk);
    await rm(dumped);
  });

  it('copies in a 50k-file tree that host e2fsck accepts', { timeout: 180_000 }, async () => {
    const src = join(dir, 'tree');
    for (let d = 0; d < FILES / 1000; d += 1) {
      const sub = join(src, `d${d}`);
      await mkdir(sub, { recursive: true });
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(sub, `f${i}`), `file ${d}/${i}\n`)));
    }
    const image = join(dir, 'tree.img');
    await makeExtImage(image, 'ext4', '512M', ['-N', '60000']);
    const summary = await withFilesystem(image, { write: true }, (fs) => fs.copyIn(src, '/data', { uid: 1000, gid: 1000 }));
    expect(summary).toMatchObject({ files: FILES, directories: FILES / 1000 });
    const fsck = await hostFsck(image);
    expect(fsck.exitCode).toBe(0);
    expect(fsck.output).toMatch(new RegExp(`${FILES + FILES / 1000 + 1 + 11}/`));
    const { stdout } = await execa('debugfs', ['-R', 'cat /data/d49/f999', image], { env: SBIN_ENV });
    expect(stdout).toBe('file 49/999');
    await rm(image);
  });
});

describe('mixing the bulk path (WASM debugfs) with per-call operations', () => {
  it('keeps earlier and later changes of the session around a bulk write, and host tools agree', { timeout: 120_000 }, async () => {
    const src = join(dir, 'mid.bin');
    const data = Buffer.alloc(6 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    await writeFile(src, data);
    const image = join(dir, 'mixed.img');
    await makeExtImage(image, 'ext4', '128M');
    const when = new Date('2020-01-02T03:04:05Z');
    await withFilesystem(image, { write: true }, async (fs) => {
      await fs.writeFile('/before.txt', 'before');
      await fs.utimes('/before.txt', when, when);
      await fs.putFile(src, '/data/mid.bin', { parents: true, mode: 0o640, uid: 33, gid: 34 });
      expect(Buffer.from(await fs.readFile('/data/mid.bin')).equals(data)).toBe(true);
      await fs.putFile(src, '/data/mid.bin', { mode: 0o600 }); // replace through the bulk path again
      await fs.writeFile('/after.txt', 'after');
      await fs.chmod('/before.txt', 0o600);
    });
    expect(lastCommit).toMatchObject({ path: 'overlay', bulk: true, directPuts: 2 });
    expect((await hostFsck(image)).exitCode).toBe(0);
    expect(await hostStat(image, '/data/mid.bin')).toMatchObject({ mode: 0o600, uid: 33, gid: 34, size: data.length });
    expect(await hostStat(image, '/before.txt')).toMatchObject({ mode: 0o600, mtime: when.getTime() / 1000 });
    const { stdout } = await execa('debugfs', ['-R', 'cat /after.txt', image], { env: SBIN_ENV });
    expect(stdout).toBe('after');
    const dumped = join(dir, 'mid.out');
    await execa('debugfs', ['-R', `dump /data/mid.bin ${dumped}`, image], { env: SBIN_ENV });
    expect((await readFile(dumped)).equals(data)).toBe(true);
  });

  it('writes large files on ext3 (block maps built by dw_alloc), which host debugfs reads back', { timeout: 120_000 }, async () => {
    const src = join(dir, 'ext3.bin');
    const data = Buffer.alloc(5 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i += 512) data.writeUInt32LE(i ^ 0x5a5a5a5a, i);
    await writeFile(src, data);
    const image = join(dir, 'ext3-bulk.img');
    await makeExtImage(image, 'ext3', '64M');
    await withFilesystem(image, { write: true }, (fs) => fs.putFile(src, '/blob', { uid: 5, gid: 6, mode: 0o444 }));
    // 1 KiB blocks: 12 direct blocks, IND, DIND with its INDs. A 4 KiB page holding an indirect
    // block goes through the overlay; the pages of data only are written in place.
    expect(lastCommit).toMatchObject({ path: 'overlay', bulk: true, directPuts: 1 });
    expect(lastCommit!.inPlaceBytes).toBeGreaterThan(data.length * 0.9);
    expect(lastCommit!.inPlaceBytes).toBeLessThan(data.length);
    expect((await hostFsck(image)).exitCode).toBe(0);
    expect(await hostStat(image, '/blob')).toMatchObject({ mode: 0o444, uid: 5, gid: 6, size: data.length });
    const dumped = join(dir, 'ext3.out');
    await execa('debugfs', ['-R', `dump /blob ${dumped}`, image], { env: SBIN_ENV });
    expect((await readFile(dumped)).equals(data)).toBe(true);
  });

  it.each([
    ['inline_data', 0],
    ['^metadata_csum,uninit_bg', 1],
  ])('writes a large file on ext4 -O %s (direct writes: %i) that host debugfs reads back', { timeout: 120_000 }, async (features, direct) => {
    const src = join(dir, 'feat.bin');
    const data = Buffer.alloc(5 * 1024 * 1024 + 3);
    for (let i = 0; i + 4 <= data.length; i += 256) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(src, data);
    const image = join(dir, `feat-${direct}.img`);
    await makeExtImage(image, 'ext4', '64M', ['-O', features]);
    await withFilesystem(image, { write: true }, (fs) => fs.putFile(src, '/f'));
    expect(lastCommit).toMatchObject({ path: 'overlay', bulk: true, directPuts: direct });
    expect((await hostFsck(image)).exitCode).toBe(0);
    const dumped = join(dir, `feat-${direct}.out`);
    await execa('debugfs', ['-R', `dump /f ${dumped}`, image], { env: SBIN_ENV });
    expect((await readFile(dumped)).equals(data)).toBe(true);
  });

  it('copies a tree with files ending in zero bytes onto an inline_data filesystem intact (e2fsprogs 1.47.0 write bug worked around)', { timeout: 120_000 }, async () => {
    const tree = join(dir, 'inline-tree');
    await mkdir(tree, { recursive: true });
    const big = Buffer.alloc(4 * 1024 * 1024 + 5);
    big.fill(7, 0, 4 * 1024 * 1024 - 100);
    await writeFile(join(tree, 'big'), big);
    for (let i = 0; i < 300; i += 1) await writeFile(join(tree, `s${i}`), i % 2 ? `small ${i}` : Buffer.from([1, 2, 0, 0, 0]));
    const image = join(dir, 'inline-tree.img');
    await makeExtImage(image, 'ext4', '64M', ['-O', 'inline_data']);
    await withFilesystem(image, { write: true }, (fs) => fs.copyIn(tree, '/t'));
    expect(lastCommit).toMatchObject({ path: 'overlay', bulk: true });
    expect((await hostFsck(image)).exitCode).toBe(0);
    const dumped = join(dir, 'inline-big.out');
    await execa('debugfs', ['-R', `dump /t/big ${dumped}`, image], { env: SBIN_ENV });
    expect((await readFile(dumped)).equals(big)).toBe(true);
    expect(await hostStat(image, '/t/s0')).toMatchObject({ size: 5 });
  });

  it('copies names with spaces and non-ASCII through the debugfs batch', { timeout: 120_000 }, async () => {
    const tree = join(dir, 'names');
    const sub = join(tree, 'dir with space', 'ünï');
    await mkdir(sub, { recursive: true });
    for (let i = 0; i < 300; i += 1) await writeFile(join(sub, `f ${i}.txt`), `x${i}`);
    await symlink('dir with space/ünï/f 1.txt', join(tree, 'link with space'));
    const image = join(dir, 'names.img');
    await makeExtImage(image, 'ext4', '64M');
    await withFilesystem(image, { write: true }, (fs) => fs.copyIn(tree, '/my dir'));
    expect(lastCommit).toMatchObject({ path: 'overlay', bulk: true });
    expect((await hostFsck(image)).exitCode).toBe(0);
    await withFilesystem(image, {}, async (fs) => {
      expect(await fs.readText('/my dir/dir with space/ünï/f 7.txt')).toBe('x7');
      expect(await fs.readlink('/my dir/link with space')).toBe('dir with space/ünï/f 1.txt');
      expect(await fs.readText('/my dir/link with space')).toBe('x1');
    });
  });

  it('writes into the overlay, not in place, the blocks a session freed and reuses for a large file (they are in use until the commit)', { timeout: 120_000 }, async () => {
    const image = join(dir, 'reuse.img');
    await makeExtImage(image, 'ext4', '32M');
    const old = join(dir, 'old.bin');
    await writeFile(old, Buffer.alloc(20 * 1024 * 1024, 7));
    await withFilesystem(image, { write: true }, (fs) => fs.putFile(old, '/old'));
    const src = join(dir, 'new.bin');
    const data = Buffer.alloc(24 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    await writeFile(src, data);
    // 32 MiB filesystem: the new file cannot fit without the 20 MiB the rm frees.
    await withFilesystem(image, { write: true }, async (fs) => {
      await fs.rm('/old');
      await fs.putFile(src, '/new');
    });
    expect(lastCommit).toMatchObject({ directPuts: 1 });
    expect(lastCommit!.inPlaceBytes).toBeLessThan(data.length - 12 * 1024 * 1024);
    expect((await hostFsck(image)).exitCode).toBe(0);
    const dumped = join(dir, 'new.out');
    await execa('debugfs', ['-R', `dump /new ${dumped}`, image], { env: SBIN_ENV });
    expect((await readFile(dumped)).equals(data)).toBe(true);
  });

  it('leaves the image byte-identical and no temp file behind when the callback throws after a bulk write', { timeout: 120_000 }, async () => {
    const src = join(dir, 'mid2.bin');
    await writeFile(src, Buffer.alloc(5 * 1024 * 1024, 3));
    const image = join(dir, 'mixed-throw.img');
    await makeExtImage(image, 'ext3', '128M');
    const before = await sha256(image);
    await expect(
      withFilesystem(image, { write: true }, async (fs) => {
        await fs.putFile(src, '/big');
        await fs.writeFile('/small', 'x');
        throw new Error('stop');
      }),
    ).rejects.toThrow('stop');
    expect(await sha256(image)).toBe(before);
    expect((await readdir(dir)).filter((n) => n.includes('diskwright'))).toEqual([]);
  });

  it('reports a debugfs failure as E_EXTFS and writes nothing', { timeout: 120_000 }, async () => {
    const src = join(dir, 'full.bin');
    await writeFile(src, Buffer.alloc(12 * 1024 * 1024, 5));
    const image = join(dir, 'tiny.img');
    await makeExtImage(image, 'ext2', '8M');
    const before = await sha256(image);
    await expect(withFilesystem(image, { write: true }, (fs) => fs.putFile(src, '/too-big'))).rejects.toMatchObject({ code: 'E_EXTFS' });
    expect(await sha256(image)).toBe(before);
  });
});
