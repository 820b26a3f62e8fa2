import { copyFile, open, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem } from '../../src/ext/index.js';
import { assertOpenableByE2fsprogs } from '../../src/e2fs/index.js';
import { isDiskwrightError } from '../../src/errors.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV } from '../unit/ext/ext-images.js';

// Images that host e2fsprogs 1.47 refuses to open (or e2fsck refuses to trust) must never be
// written by the bundled libext2fs 1.44: every write session refuses them with a hint to fsck.

let dir: string;
let ext4: string;
let ext2: string;

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
});

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
