import { chmodSync, closeSync, openSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKING_XATTR, recordedBackingIdentity } from '../../src/disk/backing-identity.js';
import { dependentsDir, liveDependents } from '../../src/disk/dependents.js';
import { openImage } from '../../src/disk/index.js';
import { destroyInstance } from '../../src/instance/index.js';
import { createThinOverlay, registerThinInstance } from '../../src/instance/thin.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { libvirtWithDisk, makeTemplate, sha256, TOOL_ENV } from './instance-helpers.js';

let root: string;
let counter = 0;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'qemu-img']) await requireTool(tool, tool === 'mke2fs' ? 'e2fsprogs' : 'qemu-utils');
  root = await tempDir('diskwright-thin-protect-');
});

/** A fresh template and a thin overlay over it, listed as its dependent (what `instance create` leaves). */
async function thinInstance(): Promise<{ template: string; overlay: string; dir: string }> {
  const dir = join(root, `case${counter++}`);
  await mkdir(join(dir, 'images'), { recursive: true });
  const { template } = await makeTemplate(dir, { size: '32M' });
  const overlay = join(dir, 'images', 'web1-disk0.qcow2');
  const temp = join(dir, 'images', '.web1-disk0.qcow2.tmp');
  createThinOverlay(template, temp, { size: 64 * 1024 * 1024 });
  expect(registerThinInstance(template, overlay, temp).problem).toBeUndefined();
  await execa('mv', [temp, overlay]);
  return { template, overlay, dir };
}

describe('thin instance overlays record their template (qemu-img as oracle)', () => {
  it('is a clean qcow2 over the raw template by its absolute path, with the template identity in an xattr', async () => {
    const { template, overlay } = await thinInstance();
    const check = await execa('qemu-img', ['check', overlay], { reject: false });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', overlay])).stdout);
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * 1024 * 1024, 'backing-filename': template, 'backing-filename-format': 'raw' });
    const compare = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', overlay, template], { reject: false });
    expect(compare.exitCode, compare.stdout).toBe(0);
    const identity = recordedBackingIdentity(overlay)!;
    expect(identity).toMatchObject({ version: 2, path: template, size: statSync(template).size, ctimeNs: String(statSync(template, { bigint: true }).ctimeNs) });
    expect(identity.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(BACKING_XATTR).toBe('user.diskwright.backing');
  });

  it('makes the template read-only and lists the overlay as its dependent', async () => {
    const { template, overlay } = await thinInstance();
    expect(statSync(template).mode & 0o222).toBe(0);
    expect(liveDependents(template)).toEqual([overlay]);
  });
});

describe('an overlay whose template changed is refused, not read', () => {
  it('refuses a template whose mtime changed, in openImage and in every command that opens the overlay', async () => {
    const { template, overlay } = await thinInstance();
    expect(() => openImage(overlay, { readOnly: true }).close()).not.toThrow();
    const later = new Date(Date.now() + 60_000);
    utimesSync(template, later, later);
    expect(() => openImage(overlay, { readOnly: true })).toThrow(expect.objectContaining({ code: 'E_BACKING_CHANGED' }));
    for (const args of [['convert', overlay, join(root, `out${counter++}.raw`)], ['partitions', overlay]]) {
      const result = await runInProcess(args);
      expect(result.code, `${args[0]}: ${result.stderr}`).not.toBe(0);
      expect(result.stderr).toMatch(/changed since the overlay was made \(it was modified at .*\).*\[E_BACKING_CHANGED\]/);
      expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
  });

  it('refuses a template whose superblock or any byte deep inside changed even with its mtime put back, and one replaced by a copy', async () => {
    const { template, overlay } = await thinInstance();
    const before = statSync(template, { bigint: true }).mtimeNs;
    chmodSync(template, 0o644);
    // Another tool (root ignores the read-only mode) changes a superblock field (its mount count).
    await execa('debugfs', ['-w', '-R', 'ssv mnt_count 7', template], { env: TOOL_ENV });
    // …and puts the mtime back, to the nanosecond.
    await execa('touch', ['-m', '-d', `@${before / 1_000_000_000n}.${String(before % 1_000_000_000n).padStart(9, '0')}`, template]);
    expect(statSync(template, { bigint: true }).mtimeNs).toBe(before);
    expect(() => openImage(overlay, { readOnly: true })).toThrow(/its first 64 KiB \(the ext superblock\) differ/);

    const third = await thinInstance();
    const at = statSync(third.template, { bigint: true }).mtimeNs;
    chmodSync(third.template, 0o644);
    // An edit deep inside the template (past the 64 KiB fingerprint) by another tool, mtime put back.
    const fd = openSync(third.template, 'r+');
    writeSync(fd, Buffer.from('changed by another tool'), 0, 23, 20 * 1024 * 1024 + 12345);
    closeSync(fd);
    await execa('touch', ['-m', '-d', `@${at / 1_000_000_000n}.${String(at % 1_000_000_000n).padStart(9, '0')}`, third.template]);
    expect(statSync(third.template, { bigint: true }).mtimeNs).toBe(at);
    expect(() => openImage(third.overlay, { readOnly: true })).toThrow(/its inode changed at .* \(a write, a restored modification time/);
    const info = await runInProcess(['info', third.overlay]);
    expect(info.code).not.toBe(0);
    expect(info.stderr).toMatch(/\[E_BACKING_CHANGED\]/);

    const second = await thinInstance();
    await execa('cp', ['--preserve=all', second.template, `${second.template}.copy`]);
    await execa('mv', ['-f', `${second.template}.copy`, second.template]);
    expect(() => openImage(second.overlay, { readOnly: true })).toThrow(/it was replaced by another file/);
  });
});

describe('a template that thin instances depend on is protected', () => {
  it('every diskwright writer refuses to change or replace it while the overlay lives', async () => {
    const { template, overlay } = await thinInstance();
    const hash = await sha256(template);
    for (const args of [
      ['fsck', template, '--fix'],
      ['resize', template, '64M'],
      ['fs', 'put', template, join(root, 'x'), '/etc/x'],
      ['create', template, '--size', '1M', '--force'],
    ]) {
      writeFileSync(join(root, 'x'), 'x\n');
      const result = await runInProcess(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).not.toBe(0);
      expect(result.stderr).toMatch(new RegExp(`refusing to (write|replace) .*debian-tmpl: thin instance ${overlay.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} use it.*\\[E_TEMPLATE_IN_USE\\]`));
    }
    expect(await sha256(template)).toBe(hash);
    expect(() => openImage(overlay, { readOnly: true }).close()).not.toThrow();
  });

  it('instance destroy removes the overlay, never the template, and gives the template its mode back', async () => {
    const { template, overlay } = await thinInstance();
    const hash = await sha256(template);
    const result = await destroyInstance('web1', { runner: libvirtWithDisk(overlay) });
    expect(result.removedDisks).toEqual([overlay]);
    expect(statSync(overlay, { throwIfNoEntry: false })).toBeUndefined();
    expect(await sha256(template)).toBe(hash);
    expect(statSync(template).mode & 0o200).toBe(0o200);
    expect(liveDependents(template)).toEqual([]);
    expect(statSync(dependentsDir(template), { throwIfNoEntry: false })).toBeUndefined();
    // Writable again: the template can be changed once nothing depends on it.
    const fix = await runInProcess(['fsck', template, '--fix']);
    expect(fix.code, fix.stderr).toBe(0);
  });

  it('an overlay removed by hand no longer protects the template (its entry is stale)', async () => {
    const { template, overlay } = await thinInstance();
    await execa('rm', ['-f', overlay]);
    expect(liveDependents(template)).toEqual([]);
    chmodSync(template, 0o644);
    const fix = await runInProcess(['fsck', template, '--fix']);
    expect(fix.code, fix.stderr).toBe(0);
  });
});
