import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeE2fsPool } from '../../src/e2fs/index.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { garbage, host, makeTree, pokeBytes, sparseFile } from '../unit/e2fs/host.js';

let dir: string;
let clean: string;
let broken: string;

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  dir = await tempDir();
  const tree = join(dir, 'tree');
  await makeTree(tree, 3, 4);
  clean = join(dir, 'clean.img');
  await sparseFile(clean, 32 << 20);
  expect((await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, clean])).exitCode).toBe(0);
  broken = join(dir, 'broken.img');
  await copyFile(clean, broken);
  const block = Number((await host('debugfs', ['-R', 'blocks /dir1', clean])).stdout.trim().split(/\s+/)[0]);
  const blockSize = Number(/Block size:\s+(\d+)/.exec((await host('dumpe2fs', ['-h', clean])).stdout)![1]);
  await pokeBytes(broken, block * blockSize, garbage(blockSize));
});

afterAll(async () => {
  await closeE2fsPool();
});

describe('diskwright fsck', () => {
  it('exits 0 on a clean filesystem and prints e2fsck’s passes', async () => {
    const result = await runInProcess(['fsck', clean]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Pass 5: Checking group summary information');
  });

  it('returns e2fsck’s exit codes: host e2fsck -fn’s on a damaged filesystem, 1 after --fix, then 0', async () => {
    const image = join(dir, 'fixme.img');
    await copyFile(broken, image);
    const hostCode = (await host('e2fsck', ['-fn', broken])).exitCode;
    expect(hostCode & 4).toBe(4);
    expect((await runInProcess(['fsck', image])).code).toBe(hostCode);
    const fixed = await runInProcess(['fsck', image, '--fix', '--json']);
    expect(fixed.code).toBe(1);
    const json = JSON.parse(fixed.stdout);
    expect(json).toMatchObject({ mode: 'fix', exitCode: 1, status: 'fixed' });
    expect(json.log).toContain('FILE SYSTEM WAS MODIFIED');
    expect((await runInProcess(['fsck', image])).code).toBe(0);
    expect((await host('e2fsck', ['-fn', image])).exitCode).toBe(0);
  });

  it('checks a logical partition of a disk image in place', async () => {
    const disk = join(dir, 'disk.img');
    await sparseFile(disk, 48 << 20);
    const { execa } = await import('execa');
    await execa('sfdisk', ['--no-reread', '--no-tell-kernel', disk], { input: 'label: dos\nstart=2048, size=8MiB, type=83\nstart=18432, type=5\nstart=20480, type=83\n', env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext3', '-E', `offset=${20480 * 512}`, disk, `${((98304 - 20480) * 512) / 1024}k`])).exitCode).toBe(0);
    const result = await runInProcess(['fsck', disk, '--partition', '5', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ partition: 5, status: 'clean' });
    const missing = await runInProcess(['fsck', disk, '--partition', '7']);
    expect(missing.code).toBe(8);
    expect(missing.stderr).toMatch(/E_NO_PARTITION/);
  });

  it('rejects --fix with --preen, a missing image and a bad partition number with one-line errors', async () => {
    const both = await runInProcess(['fsck', clean, '--fix', '--preen']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/exclude each other/);
    const missing = await runInProcess(['fsck', join(dir, 'nope.img')]);
    expect(missing.code).toBe(8);
    expect(missing.stderr).toMatch(/cannot open image .*nope\.img.*E_NOT_FOUND/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    const bad = await runInProcess(['fsck', clean, '--partition', 'x']);
    expect(bad.code).toBe(2);
  });

  it('exits 8 (operational error), never 1, with one error line when a truncated qcow2 cannot be read, in every mode', async () => {
    await requireTool('qemu-img', 'qemu-utils');
    const { execa } = await import('execa');
    const raw = join(dir, 'whole.img');
    await sparseFile(raw, 64 << 20);
    await execa('sfdisk', ['--no-reread', '--no-tell-kernel', raw], { input: 'label: dos\nstart=2048, type=83\n', env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    expect((await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', join(dir, 'tree'), '-E', `offset=${2048 * 512}`, raw, '60M'])).exitCode).toBe(0);
    const whole = join(dir, 'whole.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', raw, whole]);
    const bytes = await readFile(whole);
    const truncated = join(dir, 'truncated.qcow2');
    await writeFile(truncated, bytes.subarray(0, bytes.length >> 1));
    const before = await readFile(truncated);
    for (const mode of [[], ['--preen'], ['--fix']]) {
      const result = await runInProcess(['fsck', truncated, '-p', '1', ...mode]);
      expect(result.code, mode.join(' ')).toBe(8);
      const errors = result.stderr.split('\n').filter((line) => line.startsWith('diskwright:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^diskwright: checking the filesystem: .*past the end of the file .*\[E_OUT_OF_RANGE\]$/);
      expect(errors[0]).not.toMatch(/DiskwrightError/);
    }
    const json = await runInProcess(['fsck', truncated, '-p', '1', '--json']);
    expect(json.code).toBe(8);
    expect(JSON.parse(json.stderr.trim().split('\n').at(-1)!)).toMatchObject({ error: { code: 'E_OUT_OF_RANGE' } });
    expect(Buffer.compare(await readFile(truncated), before)).toBe(0);
  });

  it('exits 130 when interrupted and leaves the image untouched', async () => {
    const image = join(dir, 'interrupted.img');
    await copyFile(broken, image);
    const before = await readFile(image);
    const controller = new AbortController();
    controller.abort();
    const result = await runInProcess(['fsck', image, '--fix'], { signal: controller.signal });
    expect(result.code).toBe(130);
    expect(Buffer.compare(await readFile(image), before)).toBe(0);
  });
});
