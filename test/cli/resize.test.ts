import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeE2fsPool } from '../../src/e2fs/index.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { host, hostEnv, sparseFile } from '../unit/e2fs/host.js';

let dir: string;

beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir();
});

afterAll(async () => {
  await closeE2fsPool();
});

async function blocks(image: string): Promise<number> {
  return Number(/Block count:\s+(\d+)/.exec((await host('dumpe2fs', ['-h', image])).stdout)![1]);
}

describe('diskwright resize', () => {
  it('grows a filesystem image file and its filesystem (+SIZE), keeping it sparse', async () => {
    const image = join(dir, 'fs.img');
    await sparseFile(image, 32 << 20);
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', image])).exitCode).toBe(0);
    const result = await runInProcess(['resize', image, '+1G', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ imageSize: (32 << 20) + 2 ** 30, oldBlocksCount: 8192, blocksCount: ((32 << 20) + 2 ** 30) / 4096 });
    expect((await stat(image)).size).toBe((32 << 20) + 2 ** 30);
    expect(await blocks(image)).toBe(((32 << 20) + 2 ** 30) / 4096);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
  });

  it('grows the last logical partition, its container and filesystem of a disk image', async () => {
    const disk = join(dir, 'disk.img');
    await sparseFile(disk, 48 << 20);
    await execa('sfdisk', ['--no-reread', '--no-tell-kernel', disk], { input: 'label: dos\nstart=2048, size=8MiB, type=83\nstart=18432, type=5\nstart=20480, type=83\n', env: hostEnv() });
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext3', '-E', `offset=${20480 * 512}`, disk, `${((98304 - 20480) * 512) / 1024}k`])).exitCode).toBe(0);
    const result = await runInProcess(['resize', disk, '--partition', '5', '100M']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/partition 5/);
    const table = JSON.parse((await execa('sfdisk', ['--json', disk], { env: hostEnv() })).stdout).partitiontable.partitions;
    expect(table.find((p: { node: string }) => p.node.endsWith('5')).size).toBe((100 << 20) / 512 - 20480);
    expect((await runInProcess(['fsck', disk, '--partition', '5'])).code).toBe(0);
  });

  it('a failing resize2fs is reported by its own error line, not its trailing advice, and leaves the image unchanged', async () => {
    const tree = join(dir, 'tree');
    await execa('mkdir', ['-p', tree]);
    await writeFile(join(tree, 'a.txt'), 'some data\n'.repeat(1000));
    const image = join(dir, 'grow-fails.img');
    await sparseFile(image, 64 << 20);
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', tree, image])).exitCode).toBe(0);
    // The oracle: host resize2fs on a copy grown to 300G fails the same way and says why.
    const twin = join(dir, 'grow-fails-host.img');
    await execa('cp', ['--sparse=always', image, twin]);
    await execa('truncate', ['-s', '300G', twin]);
    const hostRun = await host('resize2fs', [twin]);
    expect(hostRun.exitCode).toBe(1);
    const hostLine = /^resize2fs: (.*)$/m.exec(hostRun.stderr)![1]!.replaceAll(twin, image);
    expect(hostRun.stderr).toMatch(/after the aborted resize operation/);
    const before = await readFile(image);
    const result = await runInProcess(['resize', image, '300G']);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toBe(`diskwright: resizing the filesystem in ${image} failed: ${hostLine} [E_EXTFS]`);
    expect(lines[0]).toMatch(/Illegal doubly indirect block found/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^  hint: the image was not changed/);
    expect(Buffer.compare(await readFile(image), before)).toBe(0);
  });

  it('refuses to shrink a partition (exit 2) and leaves the image unchanged', async () => {
    const disk = join(dir, 'disk.img');
    const before = await readFile(disk);
    const result = await runInProcess(['resize', disk, '--partition', '5', '50M']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refusing to shrink/);
    expect(Buffer.compare(await readFile(disk), before)).toBe(0);
  });

  it('shrinks a whole-image filesystem only as far as resize2fs allows', async () => {
    const image = join(dir, 'fs.img');
    const tooSmall = await runInProcess(['resize', image, '1M']);
    expect(tooSmall.code).toBe(1);
    expect(tooSmall.stderr).toMatch(/smaller than minimum/);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
    expect((await runInProcess(['resize', image, '512M'])).code).toBe(0);
    expect((await stat(image)).size).toBe(512 << 20);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
  });

  it('refuses a filesystem whose journal needs recovery before touching the image', async () => {
    const image = join(dir, 'dirty.img');
    await sparseFile(image, 16 << 20);
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext3', image])).exitCode).toBe(0);
    expect((await host('debugfs', ['-w', '-R', 'feature needs_recovery', image])).exitCode).toBe(0);
    const result = await runInProcess(['resize', image, '32M']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/needs recovery.*E_NEEDS_RECOVERY/);
    expect((await stat(image)).size).toBe(16 << 20);
  });
});
