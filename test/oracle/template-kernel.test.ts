import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { SBIN_PATH, debugfs } from '../helpers/debian-like.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  await requireTool('debugfs', 'e2fsprogs');
  await requireTool('sfdisk', 'fdisk');
});

const env = { PATH: SBIN_PATH };

/** A disk with a separate /boot (partition 1, ext2) and the root filesystem (partition 2, ext4). */
async function splitBootDisk(dir: string): Promise<{ disk: string; boot: string; vmlinuz: Buffer; initrd: Buffer }> {
  const bootTree = join(dir, 'boot-tree');
  const rootTree = join(dir, 'root-tree');
  await mkdir(join(bootTree, 'grub'), { recursive: true });
  await mkdir(join(rootTree, 'boot'), { recursive: true });
  await mkdir(join(rootTree, 'etc'), { recursive: true });
  const vmlinuz = randomBytes(200_000);
  const initrd = randomBytes(400_000);
  await writeFile(join(bootTree, 'vmlinuz-6.1.0-13-amd64'), vmlinuz);
  await writeFile(join(bootTree, 'initrd.img-6.1.0-13-amd64'), initrd);
  await writeFile(join(bootTree, 'vmlinuz-6.1.0-9-amd64'), randomBytes(1000));
  await writeFile(join(rootTree, 'etc/hostname'), 'x\n');
  await symlink('boot/vmlinuz-6.1.0-13-amd64', join(rootTree, 'vmlinuz'));
  const boot = join(dir, 'boot.fs');
  const root = join(dir, 'root.fs');
  await execa('mke2fs', ['-q', '-F', '-t', 'ext2', '-d', bootTree, boot, '8M'], { env });
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', rootTree, root, '16M'], { env });
  const disk = join(dir, 'split.img');
  await writeFile(disk, '');
  await truncate(disk, (2048 + 8 * 2048 + 16 * 2048 + 2048) * 512);
  await execa('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', disk], {
    env,
    input: `label: dos\nstart=2048, size=${8 * 2048}, type=83\nstart=${2048 + 8 * 2048}, size=${16 * 2048}, type=83\n`,
  });
  const handle = await open(disk, 'r+');
  try {
    const b = await readFile(boot);
    await handle.write(b, 0, b.length, 2048 * 512);
    const r = await readFile(root);
    await handle.write(r, 0, r.length, (2048 + 8 * 2048) * 512);
  } finally {
    await handle.close();
  }
  await rm(root);
  return { disk, boot, vmlinuz, initrd };
}

describe('diskwright kernel on a disk with a separate /boot partition', () => {
  it('copies the newest kernel from the root of the /boot filesystem, bytes equal to debugfs dump', async () => {
    const dir = await tempDir('diskwright-kernel-');
    const { disk, boot, vmlinuz, initrd } = await splitBootDisk(dir);
    const out = join(dir, 'out');
    const result = await runInProcess(['kernel', disk, '--partition', '1', '-o', out, '--json']);
    // With --json, stderr carries only progress events (one per file copied), never text.
    const events = result.stderr.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { event: string; step: string });
    expect(events.map((e) => e.event)).toEqual(events.map(() => 'progress'));
    expect(new Set(events.map((e) => e.step))).toEqual(new Set(['copy /vmlinuz-6.1.0-13-amd64', 'copy /initrd.img-6.1.0-13-amd64']));
    const files = JSON.parse(result.stdout) as { version: string; kernel: string; initrd: string };
    expect(files).toEqual({ image: disk, output: out, version: '6.1.0-13-amd64', kernel: join(out, 'vmlinuz-6.1.0-13-amd64'), initrd: join(out, 'initrd.img-6.1.0-13-amd64') });
    expect((await readFile(files.kernel)).equals(vmlinuz)).toBe(true);
    expect((await readFile(files.initrd)).equals(initrd)).toBe(true);
    await debugfs(boot, `dump /initrd.img-6.1.0-13-amd64 ${join(dir, 'dumped')}`);
    expect((await readFile(join(dir, 'dumped'))).equals(await readFile(files.initrd))).toBe(true);
  });

  it('says where to look when the root partition only has a dangling /vmlinuz link', async () => {
    const dir = await tempDir('diskwright-kernel-');
    const { disk } = await splitBootDisk(dir);
    const result = await runInProcess(['kernel', disk, '--partition', '2', '-o', join(dir, 'out')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no kernel \(\/boot\/vmlinuz-\*\) in this filesystem \[E_NOT_FOUND\]\n  hint: if \/boot is a separate partition, pass --partition/);
  });
});
