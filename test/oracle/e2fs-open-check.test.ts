import { copyFile, open, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem } from '../../src/ext/index.js';
import { assertOpenableByE2fsprogs, openProblem } from '../../src/e2fs/index.js';
import { runToolOnImage } from '../../src/e2fs/in-place.js';
import { imageSpec } from '../../src/e2fs/run.js';
import { isDiskwrightError } from '../../src/errors.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV } from '../unit/ext/ext-images.js';

// Images that host e2fsprogs 1.47 refuses to open (or e2fsck refuses to trust) must never be
// written by the bundled libext2fs 1.44: every write session refuses them with a hint to fsck.

let dir: string;
let ext4: string;
let ext2: string;
let ext4Gdt: string;

async function mkfs(name: string, type: string, size: string, extra: string[] = []): Promise<string> {
  const path = join(dir, name);
  await execa('truncate', ['-s', size, path]);
  await execa('mke2fs', ['-q', '-F', '-t', type, '-E', 'nodiscard', ...extra, path], { env: SBIN_ENV });
  return path;
}

type Change = { debugfs?: string | ((layout: string) => string); patch?: [number, number[]] };

async function variant(base: string, name: string, change: Change): Promise<string> {
  const path = join(dir, name);
  await copyFile(base, path);
  if (change.debugfs) {
    const layout = typeof change.debugfs === 'function' ? (await execa('dumpe2fs', [base], { env: SBIN_ENV })).stdout : '';
    const request = typeof change.debugfs === 'function' ? change.debugfs(layout) : change.debugfs;
    await execa('debugfs', ['-w', '-R', request, path], { env: SBIN_ENV });
  }
  if (change.patch) {
    const handle = await open(path, 'r+');
    await handle.write(Buffer.from(change.patch[1]), 0, change.patch[1].length, change.patch[0]);
    await handle.close();
  }
  return path;
}

/** Host 1.47's verdict: dumpe2fs (open + bitmaps + descriptor checksums) and e2fsck -fn. */
async function hostRefuses(image: string): Promise<boolean> {
  const dump = await execa('dumpe2fs', [image], { env: SBIN_ENV, reject: false });
  const fsck = await execa('e2fsck', ['-fn', image], { env: SBIN_ENV, reject: false });
  return dump.exitCode !== 0 || /EXPECTED 0x/.test(dump.stdout) || /Corrupt group descriptor|Superblock invalid|corrupt/i.test(fsck.stdout + fsck.stderr) || fsck.exitCode !== 0;
}

const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir();
  ext4 = await mkfs('ext4.img', 'ext4', '32M');
  ext2 = await mkfs('ext2.img', 'ext2', '32M');
  ext4Gdt = await mkfs('ext4-gdt.img', 'ext4', '32M', ['-O', '^metadata_csum,uninit_bg,^64bit']);
});

/** openProblem's verdict over the WASM dumpe2fs 1.47 listing (the rules as dumpe2fs shows them). */
async function dumpVerdict(image: string, offset?: number): Promise<string | undefined> {
  const dump = await runToolOnImage('dumpe2fs', [imageSpec(image, offset)], image);
  return openProblem(dump);
}

/** The debugfs `dw_open_check` verdict (what write sessions use). */
async function checkVerdict(image: string, offset?: number): Promise<string | undefined> {
  return assertOpenableByE2fsprogs(image, offset !== undefined ? { offset } : {}).then(
    () => undefined,
    (error: unknown) => (error as Error).message,
  );
}

/** A queued small-file session (the CLI's fs put): its error, or undefined when it wrote. */
async function queuedPut(image: string, offset?: number): Promise<unknown> {
  const source = join(dir, 'small.txt');
  await writeFile(source, 'small file\n');
  return withFilesystem(image, { write: true, queueWrites: true, ...(offset !== undefined ? { offset } : {}) }, async (fs) => {
    await fs.putFile(source, '/small-a');
    await fs.putFile(source, '/small-b');
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
}

// 1 KiB blocks (32 MiB images): superblock at byte 1024, descriptors from byte 2048.
const SB = 1024;
const GDT = 2048;
const cases: { name: string; base: () => string; change: Change }[] = [
  { name: 'flex_bg group count above 2^31 (s_log_groups_per_flex 40)', base: () => ext4, change: { debugfs: 'ssv log_groups_per_flex 40' } },
  { name: 'a descriptor size that is not a power of two', base: () => ext4, change: { debugfs: 'ssv desc_size 48' } },
  { name: 'an inode count that does not match the groups', base: () => ext4, change: { debugfs: 'ssv inodes_count 12345' } },
  { name: 'a cluster size below the block size', base: () => ext4, change: { debugfs: 'ssv log_cluster_size 9' } },
  { name: 'a wrong superblock checksum', base: () => ext4, change: { patch: [SB + 0x3fc, [0x12, 0x34, 0x56, 0x78]] } },
  { name: 'a wrong group descriptor checksum', base: () => ext4, change: { patch: [GDT + 0x1e, [0x34, 0x12]] } },
  { name: 'a block bitmap pointing at the superblock', base: () => ext4, change: { debugfs: 'set_bg 0 block_bitmap 1' } },
  { name: 'a wrong block bitmap checksum', base: () => ext4, change: { debugfs: 'set_bg 0 block_bitmap_csum 0x1234' } },
  { name: 'an inode bitmap on a block bitmap (flex_bg)', base: () => ext4, change: { debugfs: (layout) => `set_bg 2 inode_bitmap ${/Group 1:[\s\S]*?Block bitmap at (\d+)/.exec(layout)![1]}` } },
  { name: 'an inode table past the end of the filesystem (flex_bg)', base: () => ext4, change: { debugfs: 'set_bg 3 inode_table 32700' } },
  { name: 'a wrong group descriptor checksum (uninit_bg, no metadata_csum)', base: () => ext4Gdt, change: { patch: [GDT + 32 + 0x1e, [0x34, 0x12]] } },
  { name: 'a block bitmap outside its group (ext2, no flex_bg)', base: () => ext2, change: { debugfs: 'set_bg 1 block_bitmap 20000' } },
  {
    name: 'an inode table starting on its own block bitmap (ext2)',
    base: () => ext2,
    change: { debugfs: (layout) => `set_bg 1 inode_table ${/Group 1:[\s\S]*?Block bitmap at (\d+)/.exec(layout)![1]}` },
  },
];

describe('writes refused where e2fsprogs 1.47 would not open the filesystem', () => {
  it.each(cases)('refuses a write session on an image with $name, and leaves it unchanged', async ({ name, base, change }) => {
    const image = await variant(base(), `${name.replace(/\W+/g, '-')}.img`, change);
    expect(await hostRefuses(image)).toBe(true);
    const before = await sha(image);
    const error = await withFilesystem(image, { write: true }, (fs) => fs.writeFile('/new', 'x')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDiskwrightError(error), String(error)).toBe(true);
    const { code, message, hint } = error as { code: string; message: string; hint?: string };
    expect(['E_EXTFS', 'E_BAD_SIGNATURE', 'E_UNSUPPORTED_FEATURE', 'E_LIMIT'], message).toContain(code);
    expect(message).not.toContain('\n');
    if (/e2fsprogs 1\.47/.test(message)) expect(hint).toMatch(/diskwright fsck .* --fix/);
    expect(await sha(image)).toBe(before);
  });

  it.each(cases)("refuses a queued small-file session on an image with $name, agreeing with openProblem over dumpe2fs", async ({ name, base, change }) => {
    const image = await variant(base(), `q-${name.replace(/\W+/g, '-')}.img`, change);
    const before = await sha(image);
    // The differential: dw_open_check and openProblem(dumpe2fs) both refuse.
    expect(await dumpVerdict(image), 'openProblem').toBeDefined();
    expect(await checkVerdict(image), 'dw_open_check').toMatch(/e2fsprogs 1\.47 would not open it/);
    const error = await queuedPut(image);
    expect(isDiskwrightError(error), String(error)).toBe(true);
    const { code, message } = error as { code: string; message: string };
    expect(['E_EXTFS', 'E_BAD_SIGNATURE', 'E_UNSUPPORTED_FEATURE', 'E_LIMIT'], message).toContain(code);
    expect(message).not.toContain('\n');
    expect(await sha(image)).toBe(before);
  });

  const good: { name: string; make: () => Promise<{ image: string; offset?: number }> }[] = [
    { name: 'ext2 (1 KiB blocks)', make: async () => ({ image: await mkfs('good-ext2.img', 'ext2', '32M') }) },
    { name: 'ext3 (1 KiB blocks)', make: async () => ({ image: await mkfs('good-ext3.img', 'ext3', '32M') }) },
    { name: 'ext4 (metadata_csum, flex_bg, 64bit)', make: async () => ({ image: await mkfs('good-ext4.img', 'ext4', '64M', ['-b', '4096']) }) },
    { name: 'ext4 with uninit_bg instead of metadata_csum', make: async () => ({ image: await mkfs('good-ext4-gdt.img', 'ext4', '32M', ['-O', '^metadata_csum,uninit_bg,^64bit']) }) },
    { name: 'ext4 with meta_bg and no resize inode', make: async () => ({ image: await mkfs('good-ext4-meta.img', 'ext4', '48M', ['-O', 'meta_bg,^resize_inode']) }) },
    { name: 'ext4 without flex_bg', make: async () => ({ image: await mkfs('good-ext4-noflex.img', 'ext4', '32M', ['-O', '^flex_bg']) }) },
    {
      name: 'ext4 in a partition (offset 1 MiB)',
      make: async () => {
        const image = join(dir, 'good-part.img');
        await execa('truncate', ['-s', '40M', image]);
        await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', 'offset=1048576,nodiscard', image, '32M'], { env: SBIN_ENV });
        return { image, offset: 1048576 };
      },
    },
  ];

  it.each(good)('accepts a good $name image in both checks, and the queued session writes it clean', async ({ make }) => {
    const { image, offset } = await make();
    expect(await dumpVerdict(image, offset), 'openProblem').toBeUndefined();
    expect(await checkVerdict(image, offset), 'dw_open_check').toBeUndefined();
    expect(await queuedPut(image, offset)).toBeUndefined();
    const fsck = await execa('e2fsck', ['-fn', offset !== undefined ? `${image}?offset=${offset}` : image], { env: SBIN_ENV, reject: false });
    expect(fsck.exitCode, fsck.stdout).toBe(0);
  });

  it('names the problem and the fsck command in a one-line error', async () => {
    const image = await variant(ext4, 'flex2.img', { debugfs: 'ssv log_groups_per_flex 40' });
    await expect(assertOpenableByE2fsprogs(image)).rejects.toMatchObject({
      code: 'E_EXTFS',
      message: expect.stringMatching(/e2fsprogs 1\.47 would not open it \(The ext2 superblock is corrupt/),
      hint: expect.stringContaining(`diskwright fsck ${image} --fix`),
    });
  });

  it.each(['ext2', 'ext3', 'ext4'])('still writes a clean %s image, and host e2fsck finds it clean', async (type) => {
    const image = await mkfs(`clean-${type}.img`, type, '16M');
    await withFilesystem(image, { write: true }, (fs) => fs.writeFile('/new', 'x'));
    const fsck = await execa('e2fsck', ['-fn', image], { env: SBIN_ENV, reject: false });
    expect(fsck.exitCode, fsck.stdout).toBe(0);
  });

  it('checks the filesystem inside a disk image at its offset (4 KiB blocks)', async () => {
    const disk = join(dir, 'disk.img');
    await execa('truncate', ['-s', '80M', disk]);
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-E', 'offset=1048576', disk, '64M'], { env: SBIN_ENV });
    await withFilesystem(disk, { write: true, offset: 1048576 }, (fs) => fs.writeFile('/new', 'x'));
    // Break the copy at the offset only: group descriptor 0's checksum (descriptors in block 1).
    const handle = await open(disk, 'r+');
    await handle.write(Buffer.from([0x34, 0x12]), 0, 2, 1048576 + 4096 + 0x1e);
    await handle.close();
    await expect(withFilesystem(disk, { write: true, offset: 1048576 }, (fs) => fs.writeFile('/x', 'y'))).rejects.toMatchObject({
      code: 'E_EXTFS',
      message: expect.stringContaining('group descriptor 0 checksum does not match'),
    });
  });
});
