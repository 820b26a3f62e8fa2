/**
 * Oracle: `mkfs --partition N` into an existing qcow2 disk (made by qemu-img) lands the new
 * filesystem in the guest's partition: `qemu-img compare` with the same mkfs into the raw
 * equivalent (fixed UUID, hash seed and time), `qemu-img check` clean, host e2fsck -fn and debugfs
 * on the partition of `qemu-img convert -O raw`; the other partition and an overlay's backing
 * file are not changed.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeFilesystemInPartition, writePartitionTable } from '../../src/index.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
const MiB = 1024 * 1024;
/** Partition 2 starts after partition 1 (1 MiB + 40 MiB). */
const P2_OFFSET = 41 * MiB;
const FIXED = { uuid: '6a0fbd2c-4c55-4b6e-9d0b-2f5a3c7f0e11', hashSeed: '0f4f1c3e-9d4a-4a7e-8a2e-5b7f1e2d3c4b', fakeTime: 1700000000 };
let dir = '';
let raw = '';

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

async function qemuClean(image: string): Promise<void> {
  const check = await execa('qemu-img', ['check', image], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
}

/** `image`'s guest bytes as a raw file (what host e2fsprogs reads with ?offset=). */
async function flat(image: string): Promise<string> {
  const out = `${image}.flat`;
  await execa('qemu-img', ['convert', '-O', 'raw', image, out]);
  return out;
}

beforeAll(async () => {
  for (const [tool, pkg] of [['sfdisk', 'fdisk'], ['e2fsck', 'e2fsprogs'], ['debugfs', 'e2fsprogs'], ['qemu-img', 'qemu-utils']] as const) await requireTool(tool, pkg);
  dir = await tempDir('diskwright-oracle-mkfs-qcow2-');
  raw = join(dir, 'disk.raw');
  await writeFile(raw, '');
  await truncate(raw, 80 * MiB);
  await writePartitionTable(raw, 'label: dos\nlabel-id: 0x20130b0b\nsize=40M, type=83\ntype=83\n');
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc', 'hostname'), 'first\n');
  await makeFilesystemInPartition(raw, 1, { type: 'ext4', fromDirectory: tree });
});

describe('mkfs --partition into a qcow2 disk', () => {
  it('writes the same guest bytes as into the raw disk (qemu-img compare), qemu-img check and host e2fsck clean, partition 1 unchanged', async () => {
    const qcow2 = join(dir, 'disk.qcow2');
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    const reference = join(dir, 'reference.raw');
    copyFileSync(raw, reference);
    const fromRaw = await makeFilesystemInPartition(reference, 2, { type: 'ext3', label: 'data', ...FIXED });
    const fromQcow2 = await makeFilesystemInPartition(qcow2, 2, { type: 'ext3', label: 'data', ...FIXED });
    expect(fromQcow2).toEqual(fromRaw);
    expect(fromQcow2.offset).toBe(P2_OFFSET);
    await qemuClean(qcow2);
    const compare = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', qcow2, reference], { reject: false });
    expect(compare.exitCode, compare.stdout + compare.stderr).toBe(0);

    const guest = await flat(qcow2);
    await execa('e2fsck', ['-fn', `${guest}?offset=${P2_OFFSET}`], { env });
    const header = (await execa('dumpe2fs', ['-h', `${guest}?offset=${P2_OFFSET}`], { env })).stdout;
    expect(header).toMatch(/Filesystem volume name:\s+data\n/);
    expect(header).toMatch(/has_journal/);
    expect((await execa('debugfs', ['-R', 'cat /etc/hostname', `${guest}?offset=${MiB}`], { env })).stdout).toBe('first');
  });

  it('refuses to replace the filesystem without --force and replaces it with --force (CLI), into an overlay without writing its backing file', async () => {
    const base = join(dir, 'base.raw');
    copyFileSync(raw, base);
    const baseHash = sha256(base);
    const overlay = join(dir, 'overlay.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
    // A probed qcow2 names a backing file: followed only with --format qcow2.
    const untrusted = await runInProcess(['mkfs', overlay, '-p', '1', '--type', 'ext2', '--force']);
    expect(untrusted.stderr).toMatch(/\[E_UNTRUSTED_BACKING\]/);
    const refused = await runInProcess(['mkfs', overlay, '-p', '1', '--type', 'ext2', '--format', 'qcow2']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/partition 1 of .* already holds an ext filesystem.*\[E_EXISTS\]/);
    const made = await runInProcess(['mkfs', overlay, '-p', '1', '--type', 'ext2', '--label', 'again', '--format', 'qcow2', '--force']);
    expect(made.code, made.stderr).toBe(0);
    await qemuClean(overlay);
    expect(sha256(base)).toBe(baseHash);
    const guest = await flat(overlay);
    await execa('e2fsck', ['-fn', `${guest}?offset=${MiB}`], { env });
    const header = (await execa('dumpe2fs', ['-h', `${guest}?offset=${MiB}`], { env })).stdout;
    expect(header).toMatch(/Filesystem volume name:\s+again\n/);
    expect(header).not.toMatch(/has_journal/);
    expect((await runInProcess(['fs', 'ls', overlay, '-p', '1', '/', '--format', 'qcow2'])).stdout).not.toMatch(/etc/);
  });

  it('a swap area lands in a qcow2 partition as the guest sees it', async () => {
    const qcow2 = join(dir, 'swap.qcow2');
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    const made = await runInProcess(['mkfs', qcow2, '-p', '2', '--type', 'swap', '--uuid', FIXED.uuid]);
    expect(made.code, made.stderr).toBe(0);
    await qemuClean(qcow2);
    const blkid = await execa('blkid', ['-p', '-O', String(P2_OFFSET), '-o', 'export', await flat(qcow2)], { env, reject: false });
    expect(blkid.stdout).toMatch(/TYPE=swap/);
    expect(blkid.stdout).toContain(`UUID=${FIXED.uuid}`);
  });
});
