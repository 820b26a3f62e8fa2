import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { commitOverlay, Overlay, RawFileDisk, recordPath } from '../../src/disk/index.js';
import { runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { hostFsck, SBIN_ENV, sha256 } from '../unit/ext/ext-images.js';

const P1 = 1024 * 1024;

/**
 * A disk whose commit was "killed" after writing: junk over part of the inode tables of
 * partition 1 (host e2fsck rejects it) and the record that undoes it beside the image.
 */
async function interruptedDisk(dir: string, pristine: string, name: string): Promise<string> {
  const image = join(dir, name);
  const snapshot = join(dir, `${name}.snap`);
  copyFileSync(pristine, image);
  const disk = RawFileDisk.open(image, { readOnly: false });
  const overlay = new Overlay(disk);
  overlay.write(Buffer.alloc(256 * 1024, 0x5a), P1 + 8 * 1024 * 1024);
  overlay.write(Buffer.alloc(4096, 0xa5), P1 + 4096);
  commitOverlay(overlay, {
    onStep: (step) => {
      if (step.phase !== 'written') return;
      copyFileSync(image, snapshot);
      copyFileSync(recordPath(image), recordPath(snapshot));
    },
  });
  disk.close();
  copyFileSync(snapshot, image);
  copyFileSync(recordPath(snapshot), recordPath(image));
  return image;
}

describe('every command handles an interrupted commit (host e2fsck as oracle)', async () => {
  const dir = await tempDir();
  const pristine = join(dir, 'pristine.img');
  await execa('truncate', ['-s', '64M', pristine]);
  await execa('sfdisk', ['--quiet', pristine], { input: 'label: dos\nstart=2048, type=83\n', env: SBIN_ENV });
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', `offset=${P1}`, pristine, '60M'], { env: SBIN_ENV });
  const host = join(dir, 'x.txt');
  writeFileSync(host, 'hello\n');
  expect((await runInProcess(['fs', 'put', pristine, host, '/x', '-p', '1'])).code).toBe(0);
  const images = join(dir, 'images');
  mkdirSync(images);

  const readers: [string, (image: string) => string[]][] = [
    ['info', (i) => ['info', i, '-p', '1']],
    ['partitions', (i) => ['partitions', i]],
    ['extract', (i) => ['extract', i, '-p', '1', '-o', join(dir, 'out.img')]],
    ['kernel', (i) => ['kernel', i, '-p', '1', '-o', join(dir, 'kernel')]],
    ['fsck (check)', (i) => ['fsck', i, '-p', '1']],
    ['fs ls', (i) => ['fs', 'ls', i, '/', '-p', '1']],
    ['fs cat', (i) => ['fs', 'cat', i, '/x', '-p', '1']],
    ['fs get', (i) => ['fs', 'get', i, '/x', join(dir, 'got.txt'), '-p', '1']],
    ['fs stat', (i) => ['fs', 'stat', i, '/x', '-p', '1']],
    ['template make', (i) => ['template', 'make', i, '-p', '1', '-o', join(dir, 'tmpl')]],
    ['instance create (its template)', (i) => ['instance', 'create', '192.168.1.50', 'web1', '--template', i, '--disk-only', '--images-dir', images]],
  ];
  const writers: [string, (image: string) => string[]][] = [
    ['fs put', (i) => ['fs', 'put', i, host, '/y', '-p', '1']],
    ['fs mkdir', (i) => ['fs', 'mkdir', i, '/d', '-p', '1']],
    ['fs rm', (i) => ['fs', 'rm', i, '/x', '-p', '1']],
    ['fs ln', (i) => ['fs', 'ln', i, '/x', '/x-link', '-p', '1']],
    ['fs chmod', (i) => ['fs', 'chmod', i, '0600', '/x', '-p', '1']],
    ['fs chown', (i) => ['fs', 'chown', i, '1000:1000', '/x', '-p', '1']],
    ['fsck --fix', (i) => ['fsck', i, '-p', '1', '--fix']],
    ['resize', (i) => ['resize', i, '-p', '1', '+8M']],
    ['recover', (i) => ['recover', i]],
  ];

  it.each(readers)('%s refuses in one line naming `diskwright recover`, and touches nothing', async (name, args) => {
    const image = await interruptedDisk(dir, pristine, `r-${name.replace(/\W+/g, '-')}.img`);
    const before = await sha256(image);
    const result = await runInProcess(args(image));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/interrupted diskwright write left .*diskwright-undo.* \[E_NEEDS_RECOVERY\]\n {2}hint: run `diskwright recover /);
    expect(await sha256(image)).toBe(before);
    expect(existsSync(recordPath(image))).toBe(true);
  });

  it.each(writers)('%s rolls the interrupted commit back first, then works on a clean filesystem', async (name, args) => {
    const image = await interruptedDisk(dir, pristine, `w-${name.replace(/\W+/g, '-')}.img`);
    expect((await hostFsck(`${image}?offset=${P1}`)).exitCode).not.toBe(0);
    const result = await runInProcess(args(image));
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(recordPath(image))).toBe(false);
    expect((await hostFsck(`${image}?offset=${P1}`)).exitCode).toBe(0);
  });
});
