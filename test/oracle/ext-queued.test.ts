import { chmod, copyFile, open, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem } from '../../src/ext/index.js';
import { lastCommit } from '../../src/ext/with-filesystem.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { hostCat, hostFsck, hostStat, makeExtImage, SBIN_ENV, sha256 } from '../unit/ext/ext-images.js';

// Small puts and mkdirs of a write session are queued and run as one WASM debugfs batch on the
// overlay (src/ext/queued.ts); libext2fs 1.44 is not opened unless an operation needs it. Host
// debugfs and e2fsck are the oracle; errors must be the per-call path's, before any commit.

let dir: string;
const sources: string[] = [];
beforeAll(async () => {
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir();
  for (let i = 0; i < 5; i += 1) {
    const path = join(dir, `small${i}`);
    await writeFile(path, `small file ${i}\n`.repeat(20 + 40 * i));
    await chmod(path, 0o640);
    sources.push(path);
  }
});

async function image(name: string, type: 'ext3' | 'ext4' = 'ext4', extra: string[] = []): Promise<string> {
  const path = join(dir, name);
  await makeExtImage(path, type, '64M', extra);
  return path;
}

/** Block numbers of every group's block and inode bitmap (host dumpe2fs). */
async function bitmapBlocks(img: string): Promise<{ listing: string; blocks: number[]; blockSize: number }> {
  const { stdout } = await execa('dumpe2fs', [img], { env: SBIN_ENV });
  const blocks = [...stdout.matchAll(/(?:Block|Inode) bitmap at (\d+)/g)].map((m) => Number(m[1]));
  // Times and the superblock checksum (it covers the write time) differ between two runs.
  const listing = stdout.split('\n').filter((l) => !/time|Checksum:|Lifetime writes/i.test(l)).join('\n');
  return { listing, blocks, blockSize: Number(/^Block size:\s+(\d+)/m.exec(stdout)![1]) };
}

async function readBlock(img: string, block: number, size: number): Promise<Buffer> {
  const handle = await open(img, 'r');
  try {
    const buffer = Buffer.alloc(size);
    await handle.read(buffer, 0, size, block * size);
    return buffer;
  } finally {
    await handle.close();
  }
}

describe('queued small writes', () => {
  it.each([
    ['ext2 with 1 KiB blocks', 'ext2', ['-b', '1024']],
    ['ext3', 'ext3', []],
    ['ext4 (metadata_csum, flex_bg, uninit groups)', 'ext4', []],
    ['ext4 with uninit_bg instead of metadata_csum', 'ext4', ['-O', '^metadata_csum,uninit_bg']],
  ] as const)('writes only the bitmap blocks a batch changed, leaving every bitmap and descriptor as host debugfs does (%s)', async (_name, type, extra) => {
    const ours = join(dir, `bitmaps-${type}-${extra.join('')}.img`);
    const host = `${ours}.host`;
    await makeExtImage(ours, type, '64M', [...extra]);
    await copyFile(ours, host);
    await withFilesystem(ours, { write: true, queueWrites: true }, async (fs) => {
      await fs.mkdir('/d');
      for (const [i, src] of sources.entries()) await fs.putFile(src, `/d/f${i}`);
    });
    const commands = ['mkdir /d', ...sources.map((src, i) => `write ${src} /d/f${i}`)].join('\n');
    await execa('debugfs', ['-w', '-f', '-', host], { env: SBIN_ENV, input: `${commands}\n` });
    expect((await hostFsck(ours)).exitCode).toBe(0);
    const [a, b] = [await bitmapBlocks(ours), await bitmapBlocks(host)];
    // Same free counts, flags and checksums per group (descriptor and bitmap checksums included).
    expect(a.listing).toBe(b.listing);
    expect(a.blocks.length).toBeGreaterThan(4);
    for (const block of a.blocks) expect((await readBlock(ours, block, a.blockSize)).equals(await readBlock(host, block, b.blockSize)), `bitmap block ${block}`).toBe(true);
  });

  it('writes five small files and a directory in one debugfs batch without opening libext2fs; host debugfs reads them back', async () => {
    for (const type of ['ext3', 'ext4'] as const) {
      const img = await image(`five-${type}.img`, type);
      await withFilesystem(img, { write: true, queueWrites: true }, async (fs) => {
        await fs.mkdir('/etc', { mode: 0o750, uid: 7, gid: 8 });
        for (const [i, src] of sources.entries()) await fs.putFile(src, `/etc/f${i}`, i === 1 ? { mode: 0o600, uid: 1000, gid: 100 } : {});
      });
      expect(lastCommit).toMatchObject({ mounted: false, bulk: true });
      expect((await hostFsck(img)).exitCode).toBe(0);
      expect(await hostStat(img, '/etc')).toMatchObject({ type: 'directory', mode: 0o750, uid: 7, gid: 8 });
      expect(await hostStat(img, '/etc/f0')).toMatchObject({ type: 'regular', mode: 0o640, uid: 0, gid: 0 });
      expect(await hostStat(img, '/etc/f1')).toMatchObject({ type: 'regular', mode: 0o600, uid: 1000, gid: 100 });
      for (let i = 0; i < sources.length; i += 1) {
        const expected = Buffer.from(`small file ${i}\n`.repeat(20 + 40 * i));
        expect((await hostCat(img, `/etc/f${i}`)).equals(expected)).toBe(true);
        expect((await hostStat(img, `/etc/f${i}`)).size).toBe(expected.length);
      }
    }
  });

  it('lets a read after queued writes see them (the queue is flushed first)', async () => {
    const img = await image('read-after.img');
    await withFilesystem(img, { write: true, queueWrites: true }, async (fs) => {
      await fs.putFile(sources[0]!, '/a');
      await fs.mkdir('/d');
      expect(await fs.readText('/a')).toBe('small file 0\n'.repeat(20));
      expect((await fs.stat('/d')).kind).toBe('directory');
      // After libext2fs is open, puts go through it.
      await fs.putFile(sources[1]!, '/d/b');
      expect((await fs.readdir('/d')).map((e) => e.name)).toEqual(['b']);
    });
    expect(lastCommit).toMatchObject({ mounted: true });
    expect((await hostFsck(img)).exitCode).toBe(0);
    expect((await hostCat(img, '/d/b')).toString()).toBe('small file 1\n'.repeat(60));
  });

  it('replaces an existing file keeping its mode and owner, as the per-call path does (the batch fails, the queue is replayed)', async () => {
    const img = await image('replace.img');
    await withFilesystem(img, { write: true, queueWrites: true }, (fs) => fs.writeFile('/x', 'old', { mode: 0o604, uid: 5, gid: 6 }));
    await withFilesystem(img, { write: true, queueWrites: true }, async (fs) => {
      await fs.putFile(sources[0]!, '/y');
      await fs.putFile(sources[2]!, '/x');
    });
    expect(lastCommit).toMatchObject({ mounted: true });
    expect((await hostFsck(img)).exitCode).toBe(0);
    expect(await hostStat(img, '/x')).toMatchObject({ mode: 0o604, uid: 5, gid: 6, size: 'small file 2\n'.length * 100 });
    expect((await hostCat(img, '/y')).toString()).toBe('small file 0\n'.repeat(20));
  });

  it('fails with the per-call error (E_NOT_FOUND for a missing parent, E_EXISTS for mkdir) before committing, image unchanged', async () => {
    const img = await image('errors.img');
    const before = await sha256(img);
    await expect(withFilesystem(img, { write: true, queueWrites: true }, async (fs) => {
      await fs.putFile(sources[0]!, '/ok');
      await fs.putFile(sources[1]!, '/missing/dir/f');
    })).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringContaining('/missing/dir') });
    await expect(withFilesystem(img, { write: true, queueWrites: true }, async (fs) => {
      await fs.mkdir('/lost+found');
    })).rejects.toMatchObject({ code: 'E_EXISTS' });
    expect(await sha256(img)).toBe(before);
  });

  it('surfaces a queued error at the next operation and then fails the session: nothing is committed even if the caller goes on', async () => {
    const img = await image('fail-session.img');
    const before = await sha256(img);
    await expect(withFilesystem(img, { write: true, queueWrites: true }, async (fs) => {
      await fs.putFile(sources[0]!, '/nodir/f');
      await expect(fs.exists('/nodir')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      await expect(fs.putFile(sources[1]!, '/g')).rejects.toThrow(/earlier write of this session failed/);
    })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await sha256(img)).toBe(before);
  });

  it('keeps the trailing zero bytes of small files on an inline_data filesystem', async () => {
    const img = await image('inline.img', 'ext4', ['-O', 'inline_data']);
    const src = join(dir, 'zeros-at-end');
    await writeFile(src, Buffer.concat([Buffer.from('abc'), Buffer.alloc(40)]));
    await withFilesystem(img, { write: true, queueWrites: true }, (fs) => fs.putFile(src, '/z'));
    expect(lastCommit).toMatchObject({ mounted: false });
    expect((await hostFsck(img)).exitCode).toBe(0);
    // Host debugfs `cat` prints the whole 60-byte inline area; the size and our read say what the file holds.
    expect(await hostStat(img, '/z')).toMatchObject({ size: 43 });
    const back = await withFilesystem(img, {}, (fs) => fs.readFile('/z'));
    expect(Buffer.from(back).equals(Buffer.concat([Buffer.from('abc'), Buffer.alloc(40)]))).toBe(true);
  });

  it('takes the per-call path with DISKWRIGHT_NO_BULK=1', async () => {
    const img = await image('nobulk.img');
    process.env.DISKWRIGHT_NO_BULK = '1';
    try {
      await withFilesystem(img, { write: true, queueWrites: true }, (fs) => fs.putFile(sources[3]!, '/n'));
    } finally {
      delete process.env.DISKWRIGHT_NO_BULK;
    }
    expect(lastCommit).toMatchObject({ mounted: true, bulk: false });
    expect((await hostCat(img, '/n')).toString()).toBe('small file 3\n'.repeat(140));
  });
});
