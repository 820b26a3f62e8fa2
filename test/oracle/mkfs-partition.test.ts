/**
 * Oracle: `mkfs --partition N` makes a filesystem that fills partition N (host e2fsck -fn and
 * dumpe2fs read it in place through e2fsprogs' `IMAGE?offset=` io option), and `--type swap`
 * writes exactly the first page host `mkswap -U UUID -L LABEL` writes (blkid agrees).
 */
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeFilesystemInPartition, writePartitionTable } from '../../src/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
const MiB = 1024 * 1024;
const SWAP_UUID = '1b4e28ba-2fa1-11d2-883f-b9a761bde3fb';
let dir = '';

beforeAll(async () => {
  for (const [tool, pkg] of [['sfdisk', 'fdisk'], ['e2fsck', 'e2fsprogs'], ['mkswap', 'util-linux'], ['blkid', 'util-linux']] as const) await requireTool(tool, pkg);
  dir = await tempDir('diskwright-oracle-mkfs-partition-');
});

async function seedDisk(name: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, 96 * MiB);
  await writePartitionTable(path, 'label: dos\nlabel-id: 0x20130b0b\nsize=64M, type=83, bootable\ntype=5\ntype=82\n');
  return path;
}

describe('mkfs --partition', () => {
  it('makes an ext3 filesystem filling partition 1, from a directory, clean for host e2fsck', async () => {
    const disk = await seedDisk('ext.img');
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc', 'hostname'), 'seed\n');
    const result = await makeFilesystemInPartition(disk, 1, { type: 'ext3', label: 'root', fromDirectory: tree });
    expect(result).toMatchObject({ partition: 1, offset: 2048 * 512, size: 64 * MiB, type: 'ext3' });
    const spec = `${disk}?offset=${result.offset}`;
    await execa('e2fsck', ['-fn', spec], { env });
    const header = (await execa('dumpe2fs', ['-h', spec], { env })).stdout;
    // mke2fs.conf's "small" type: 1 KiB blocks; the filesystem covers the whole partition.
    const blocks = Number(/Block count:\s+(\d+)/.exec(header)![1]);
    const blockSize = Number(/Block size:\s+(\d+)/.exec(header)![1]);
    expect(blocks * blockSize).toBe(64 * MiB);
    expect(header).toMatch(/Filesystem volume name:\s+root\n/);
    expect(header).toMatch(/has_journal/);
    const cat = await execa('debugfs', ['-R', 'cat /etc/hostname', spec], { env });
    expect(cat.stdout).toBe('seed');
    // The partition table and the swap partition are untouched.
    const json = JSON.parse((await execa('sfdisk', ['--json', disk], { env })).stdout) as { partitiontable: { partitions: unknown[] } };
    expect(json.partitiontable.partitions).toHaveLength(3);
  });

  it('refuses to replace an existing filesystem without force, and replaces it with force', async () => {
    const disk = await seedDisk('again.img');
    await makeFilesystemInPartition(disk, 1, { type: 'ext4' });
    await expect(makeFilesystemInPartition(disk, 1, { type: 'ext2' })).rejects.toMatchObject({ code: 'E_EXISTS' });
    await makeFilesystemInPartition(disk, 1, { type: 'ext2', force: true });
    const header = (await execa('dumpe2fs', ['-h', `${disk}?offset=${2048 * 512}`], { env })).stdout;
    expect(header).not.toMatch(/has_journal/);
    await execa('e2fsck', ['-fn', `${disk}?offset=${2048 * 512}`], { env });
  });

  it('refuses the extended partition and a missing partition', async () => {
    const disk = await seedDisk('bad.img');
    await expect(makeFilesystemInPartition(disk, 2, { type: 'ext4' })).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    await expect(makeFilesystemInPartition(disk, 7, { type: 'ext4' })).rejects.toMatchObject({ code: 'E_NO_PARTITION' });
  });

  it('writes the swap signature mkswap -U writes, which blkid reads back', async () => {
    const disk = await seedDisk('swap.img');
    const result = await makeFilesystemInPartition(disk, 5, { type: 'swap', uuid: SWAP_UUID, label: 'seedswap' });
    // The same blank region, given to host mkswap.
    const theirs = join(dir, 'mkswap.img');
    await writeFile(theirs, '');
    await truncate(theirs, result.size);
    await execa('mkswap', ['-U', SWAP_UUID, '-L', 'seedswap', theirs], { env });
    const ours = (await readFile(disk)).subarray(result.offset, result.offset + result.size);
    expect(Buffer.compare(ours, await readFile(theirs))).toBe(0);
    const probe = (await execa('blkid', ['-p', '-O', String(result.offset), '-o', 'export', disk], { env })).stdout;
    expect(probe).toMatch(/^TYPE=swap$/m);
    expect(probe).toMatch(new RegExp(`^UUID=${SWAP_UUID}$`, 'm'));
    expect(probe).toMatch(/^LABEL=seedswap$/m);
  });
});
