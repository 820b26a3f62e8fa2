import { mkdir, readdir, stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeE2fsPool } from '../../src/e2fs/index.js';
import { runBin, runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { host, makeTree } from '../unit/e2fs/host.js';

let dir: string;
let tree: string;

beforeAll(async () => {
  await requireTool('e2fsck', 'e2fsprogs');
  dir = await tempDir();
  tree = join(dir, 'tree');
  await makeTree(tree, 2, 3);
});

afterAll(async () => {
  await closeE2fsPool();
});

describe('diskwright mkfs', () => {
  it('builds an ext3 filesystem from a directory without root; host tools read it back', async () => {
    const image = join(dir, 'root.ext3');
    const result = await runInProcess(['mkfs', image, '--type', 'ext3', '--size', '64M', '--from', tree, '--label', 'root', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ output: image, type: 'ext3', size: 64 << 20, label: 'root' });
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
    expect((await host('dumpe2fs', ['-h', image])).stdout).toMatch(/Filesystem volume name:\s+root\n/);
    expect((await host('debugfs', ['-R', 'cat /dir1/file2.txt', image])).stdout).toBe(await readFile(join(tree, 'dir1', 'file2.txt'), 'utf8'));
  });

  it('an 8G mkfs allocates only megabytes', async () => {
    const image = join(dir, 'big.img');
    expect((await runInProcess(['mkfs', image, '--type', 'ext4', '--size', '8G'])).code).toBe(0);
    const info = await stat(image);
    expect(info.size).toBe(8 * 2 ** 30);
    expect(info.blocks * 512).toBeLessThan(32 << 20);
  });

  it('refuses to replace an existing file without --force and replaces it with --force', async () => {
    const image = join(dir, 'existing.img');
    await writeFile(image, 'keep me');
    const refused = await runInProcess(['mkfs', image, '--size', '16M']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already exists.*E_EXISTS/);
    expect(await readFile(image, 'utf8')).toBe('keep me');
    expect((await runInProcess(['mkfs', image, '--size', '16M', '--force'])).code).toBe(0);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
  });

  it('rejects bad arguments with exit 2 and leaves no file behind', async () => {
    const sub = join(dir, 'bad');
    await mkdir(sub);
    const image = join(sub, 'x.img');
    expect((await runInProcess(['mkfs', image, '--type', 'xfs', '--size', '16M'])).code).toBe(2);
    expect((await runInProcess(['mkfs', image, '--size', '16M', '--uuid', 'nope'])).code).toBe(2);
    expect((await runInProcess(['mkfs', image])).code).toBe(2);
    // --format names an existing image's format: a new filesystem image is raw.
    const format = await runInProcess(['mkfs', image, '--size', '16M', '--format', 'qcow2']);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/--format needs --partition.*\[E_USAGE\]/);
    const missing = await runInProcess(['mkfs', image, '--size', '16M', '--from', join(dir, 'absent')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/E_NOT_FOUND/);
    expect(await readdir(sub)).toEqual([]);
  });

  it('works with no e2fsprogs on PATH (no /usr/sbin, no /sbin): mkfs, fsck, info and resize', async () => {
    const env = { PATH: '/nonexistent', HOME: dir };
    const image = join(dir, 'nopath.img');
    const made = await runBin(['mkfs', image, '--type', 'ext4', '--size', '32M', '--from', tree], { env });
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect((await runBin(['fsck', image], { env })).code).toBe(0);
    const resized = await runBin(['resize', image, '48M'], { env });
    expect(resized.stderr).toBe('');
    expect(resized.code).toBe(0);
    const info = await runBin(['info', image, '--json'], { env });
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout).blocksCount * JSON.parse(info.stdout).blockSize).toBe(48 << 20);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
  });
});
