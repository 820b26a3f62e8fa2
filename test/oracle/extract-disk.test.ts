import { execa } from 'execa';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractPartition } from '../../src/io/extract.js';
import { copyUsedBlocks } from '../../src/io/used-copy.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
const MiB = 1 << 20;
/** p1 of the test disk, in sectors: 2048 + 120 MiB (a filesystem with 30 000 free blocks). */
const P1 = { start: 2048, sectors: 245_760 };
let dir: string;
let raw: string;
let tree: string;

const allocated = async (path: string): Promise<number> => (await stat(path)).blocks * 512;

/** A 128 MiB sparse MBR disk whose p1 holds an ext4 made by mke2fs -d, with stale bytes in free space. */
beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  await requireTool('mke2fs', 'e2fsprogs');
  await requireTool('debugfs', 'e2fsprogs');
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir('diskwright-extract-disk-');
  raw = join(dir, 'disk.img');
  tree = join(dir, 'tree');
  await execa('mkdir', ['-p', join(tree, 'etc'), join(tree, 'data')]);
  await execa('sh', ['-c', 'echo vm1 > "$1/etc/hostname"; head -c 3000000 /dev/urandom > "$1/data/blob"; seq 1 200000 > "$1/data/numbers"', 'sh', tree]);
  const handle = await open(raw, 'w');
  await handle.truncate(128 * MiB);
  // Stale bytes where the filesystem's free space will be: --only-used must leave them out.
  await handle.write(Buffer.alloc(6 * MiB, 0x5a), 0, 6 * MiB, P1.start * 512 + 90 * MiB);
  await handle.close();
  await execa('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', raw], { input: `label: dos\nstart=${P1.start}, size=${P1.sectors}, type=83\n`, env });
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-E', `offset=${P1.start * 512},nodiscard`, raw, `${(P1.sectors * 512) / 1024}k`], { env });
});

/** What host debugfs says about the files of the filesystem in `image`. */
async function listing(image: string): Promise<string> {
  const out = await execa('debugfs', ['-R', 'ls -l /data', image], { env });
  const cat = await execa('debugfs', ['-R', 'cat /etc/hostname', image], { env });
  return `${out.stdout.replace(/\s+\d{1,2}-\w{3}-\d{4} \d\d:\d\d/g, '')}\n${cat.stdout}`;
}

async function fsckClean(image: string): Promise<void> {
  const fsck = await execa('e2fsck', ['-fn', image], { env, reject: false });
  expect(fsck.exitCode, fsck.stdout).toBe(0);
}

describe('extract reads the partition through the block layer', () => {
  it('keeps the holes of a sparse image as holes and does not read them', async () => {
    const out = join(dir, 'p1.full');
    const summary = await extractPartition(raw, 1, out);
    const ref = join(dir, 'p1.dd');
    await execa('dd', [`if=${raw}`, `of=${ref}`, 'bs=512', `skip=${P1.start}`, `count=${P1.sectors}`, 'conv=sparse', 'status=none']);
    expect((await execa('cmp', [ref, out], { reject: false })).exitCode).toBe(0);
    // No larger than the source's own allocation for the partition (a little slack for extent blocks).
    const source = await allocated(raw);
    expect(await allocated(out)).toBeLessThanOrEqual(source + 8 * 4096);
    // The holes were skipped, not read: far less read than the 120 MiB partition.
    expect(summary.readBytes).toBeLessThan(source + 4 * MiB);
    expect(summary.readBytes).toBeLessThan(summary.bytes / 4);
  });

  it('--only-used from a qcow2 (plain and compressed) equals --only-used from the raw disk', async () => {
    const fromRaw = join(dir, 'p1.used-raw');
    const rawSummary = await extractPartition(raw, 1, fromRaw, { onlyUsed: true });
    await fsckClean(fromRaw);
    for (const extra of [[], ['-c']]) {
      const qcow = join(dir, `disk${extra.join('')}.qcow2`);
      await execa('qemu-img', ['convert', ...extra, '-O', 'qcow2', raw, qcow]);
      const out = join(dir, `p1.used-qcow2${extra.join('')}`);
      const summary = await extractPartition(qcow, 1, out, { onlyUsed: true });
      expect(summary.mode).toBe('only-used');
      expect((await execa('cmp', [fromRaw, out], { reject: false })).exitCode).toBe(0);
      expect(summary.dataBytes).toBe(rawSummary.dataBytes);
      await fsckClean(out);
      expect(await listing(out)).toBe(await listing(fromRaw));
    }
    // The stale bytes in free space were left out.
    const full = join(dir, 'p1.full');
    expect(await allocated(fromRaw)).toBeLessThan((await allocated(full)) - 5 * MiB);
  });

  it('copyUsedBlocks copies an extracted partition from a qcow2 of it as from the raw file', async () => {
    const template = join(dir, 'p1.used-raw');
    const qcow = join(dir, 'tmpl.qcow2');
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', template, qcow]);
    const a = join(dir, 'inst-a');
    const b = join(dir, 'inst-b');
    const fromRaw = await copyUsedBlocks(template, a, { size: 256 * MiB });
    const fromQcow = await copyUsedBlocks(qcow, b, { size: 256 * MiB });
    expect([fromRaw.mode, fromQcow.mode]).toEqual(['only-used', 'only-used']);
    expect((await stat(b)).size).toBe(256 * MiB);
    expect((await execa('cmp', [a, b], { reject: false })).exitCode).toBe(0);
    // Only what the template stores is read (small holes between data are read with it).
    expect(fromRaw.readBytes).toBeLessThanOrEqual((await allocated(template)) + 2 * MiB);
    expect(fromRaw.readBytes).toBeLessThan((await stat(template)).size / 10);
  });
});
