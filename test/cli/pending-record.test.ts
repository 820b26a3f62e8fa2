import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { commitOverlay, Overlay, RawFileDisk, recordPath } from '../../src/disk/index.js';
import { runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { hostFsck, SBIN_ENV, sha256 } from '../unit/ext/ext-images.js';

const P1 = 1024 * 1024;

/** What a command does with an image that has a pending commit record. */
type Handling =
  | { readonly kind: 'read' | 'write' | 'output'; readonly args: (image: string) => string[] }
  | { readonly kind: 'none'; readonly why: string };

/**
 * A disk whose commit was "killed" half-way: junk over an early metadata block of partition 1
 * (host e2fsck rejects it) written, the later junk over part of its inode tables not yet, and the
 * record that undoes it beside the image. (Killed after its last write, every changed block
 * holds its new bytes: the next writer keeps them as a completed commit.)
 */
async function interruptedDisk(dir: string, pristine: string, name: string): Promise<string> {
  const image = join(dir, name);
  const snapshot = join(dir, `${name}.snap`);
  copyFileSync(pristine, image);
  const disk = RawFileDisk.open(image, { readOnly: false });
  const overlay = new Overlay(disk);
  overlay.write(Buffer.alloc(256 * 1024, 0x5a), P1 + 8 * 1024 * 1024);
  overlay.write(Buffer.alloc(4096, 0xa5), P1 + 4096);
  let writes = 0;
  commitOverlay(overlay, {
    onStep: (step) => {
      if (step.phase !== 'write' || ++writes !== 2) return;
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

  const script = join(dir, 'layout.sfdisk');
  writeFileSync(script, 'label: dos\nstart=2048, type=83\n');
  const batch = join(dir, 'edits.txt');
  writeFileSync(batch, `put ${host} /z\nmkdir /e\n`);

  /**
   * Every command of the manifest (dist/cli/commands/manifest.json) and what it does with an image
   * that has a pending record: readers refuse, writers roll back, commands that make a new file
   * refuse to replace such an image. A command added later without a row here fails below.
   */
  const table: Record<string, readonly Handling[]> = {
    demo: [{ kind: 'none', why: 'works in a new directory of its own' }],
    create: [{ kind: 'output', args: (i) => ['create', i, '--size', '64M', '--force'] }],
    partitions: [{ kind: 'read', args: (i) => ['partitions', i] }],
    partition: [{ kind: 'write', args: (i) => ['partition', i, script] }],
    'disk build': [{ kind: 'output', args: (i) => ['disk', 'build', i, '--size', '64M', '--layout', script, '--force'] }],
    extract: [{ kind: 'read', args: (i) => ['extract', i, '-p', '1', '-o', join(dir, 'out.img'), '--force'] }],
    convert: [
      { kind: 'read', args: (i) => ['convert', i, join(dir, 'out.qcow2'), '-O', 'qcow2', '--force'] },
      { kind: 'output', args: (i) => ['convert', pristine, i, '--force'] },
    ],
    fsck: [
      { kind: 'read', args: (i) => ['fsck', i, '-p', '1'] },
      { kind: 'write', args: (i) => ['fsck', i, '-p', '1', '--fix'] },
    ],
    mkfs: [
      { kind: 'output', args: (i) => ['mkfs', i, '--type', 'ext4', '--size', '16M', '--force'] },
      { kind: 'write', args: (i) => ['mkfs', i, '-p', '1', '--type', 'ext4', '--force'] },
    ],
    resize: [{ kind: 'write', args: (i) => ['resize', i, '-p', '1', '+8M'] }],
    info: [{ kind: 'read', args: (i) => ['info', i, '-p', '1'] }],
    'fs ls': [{ kind: 'read', args: (i) => ['fs', 'ls', i, '/', '-p', '1'] }],
    'fs cat': [{ kind: 'read', args: (i) => ['fs', 'cat', i, '/x', '-p', '1'] }],
    'fs put': [{ kind: 'write', args: (i) => ['fs', 'put', i, host, '/y', '-p', '1'] }],
    'fs get': [{ kind: 'read', args: (i) => ['fs', 'get', i, '/x', join(dir, 'got.txt'), '-p', '1', '--force'] }],
    'fs rm': [{ kind: 'write', args: (i) => ['fs', 'rm', i, '/x', '-p', '1'] }],
    'fs mkdir': [{ kind: 'write', args: (i) => ['fs', 'mkdir', i, '/d', '-p', '1'] }],
    'fs ln': [{ kind: 'write', args: (i) => ['fs', 'ln', i, '/x', '/x-link', '-p', '1'] }],
    'fs chmod': [{ kind: 'write', args: (i) => ['fs', 'chmod', i, '0600', '/x', '-p', '1'] }],
    'fs chown': [{ kind: 'write', args: (i) => ['fs', 'chown', i, '1000:1000', '/x', '-p', '1'] }],
    'fs stat': [{ kind: 'read', args: (i) => ['fs', 'stat', i, '/x', '-p', '1'] }],
    'fs batch': [{ kind: 'write', args: (i) => ['fs', 'batch', i, batch, '-p', '1'] }],
    kernel: [{ kind: 'read', args: (i) => ['kernel', i, '-p', '1', '-o', join(dir, 'kernel')] }],
    'template make': [
      { kind: 'read', args: (i) => ['template', 'make', i, '-p', '1', '-o', join(dir, 'tmpl'), '--force'] },
      { kind: 'output', args: (i) => ['template', 'make', pristine, '-p', '1', '-o', i, '--force'] },
    ],
    'template ops': [{ kind: 'none', why: 'lists operations, takes no image' }],
    'template show': [{ kind: 'read', args: (i) => ['template', 'show', i] }],
    'instance create': [{ kind: 'read', args: (i) => ['instance', 'create', '192.168.1.50', 'web1', '--template', i, '--disk-only', '--images-dir', images] }],
    'instance list': [{ kind: 'none', why: 'asks libvirt, takes no image' }],
    'instance destroy': [{ kind: 'none', why: 'takes a domain name; removes the disk and its record (test/cli/instance.test.ts)' }],
    recover: [{ kind: 'write', args: (i) => ['recover', i] }],
  };
  const manifest = JSON.parse(readFileSync(new URL('../../dist/cli/commands/manifest.json', import.meta.url), 'utf8')) as { name: string }[];
  const rows = Object.entries(table).flatMap(([name, handlings]) => handlings.map((h, k) => ({ name, h, label: `${name}${handlings.length > 1 ? ` (${h.kind})` : ''}`, k })));
  const cases = (kind: Handling['kind']): [string, (image: string) => string[]][] =>
    rows.flatMap(({ h, label }) => (h.kind === kind && h.kind !== 'none' ? [[label, h.args] as [string, (image: string) => string[]]] : []));
  const readers = cases('read');
  const writers = cases('write');
  const outputs = cases('output');

  it('every command in the manifest says what it does with a pending record (a new command without a row fails here)', () => {
    expect(manifest.length).toBeGreaterThan(20);
    expect(manifest.map((c) => c.name).filter((name) => !(name in table))).toEqual([]);
    expect(Object.keys(table).filter((name) => !manifest.some((c) => c.name === name))).toEqual([]);
  });

  it.each(outputs)('%s refuses to replace an image with a pending record, in one line naming `diskwright recover`, and touches nothing', async (_name, args) => {
    const image = await interruptedDisk(dir, pristine, `o-${_name.replace(/\W+/g, '-')}.img`);
    const before = await sha256(image);
    const result = await runInProcess(args(image));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/interrupted diskwright write left .*diskwright-undo.* \[E_NEEDS_RECOVERY\]\n {2}hint: run `diskwright recover /);
    expect(result.stderr.trim().split('\n')).toHaveLength(2);
    expect(await sha256(image)).toBe(before);
    expect(existsSync(recordPath(image))).toBe(true);
  });

  it('a record left beside a file that is gone is removed when a new image is made there (it would corrupt the new one)', async () => {
    const image = join(dir, 'gone.img');
    writeFileSync(recordPath(image), 'record of a deleted image');
    const result = await runInProcess(['create', image, '--size', '8M']);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(recordPath(image))).toBe(false);
  });

  it.each(readers)('%s refuses in one line naming `diskwright recover`, and touches nothing', async (name, args) => {
    const image = await interruptedDisk(dir, pristine, `r-${name.replace(/\W+/g, '-')}.img`);
    const before = await sha256(image);
    const result = await runInProcess(args(image));
    // fsck's failures are e2fsck's operational error (8), never 1 ("errors corrected").
    expect(result.code).toBe(name.startsWith('fsck') ? 8 : 1);
    expect(result.stderr.trim().split('\n')).toHaveLength(2);
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
