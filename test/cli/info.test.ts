import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeE2fsPool } from '../../src/e2fs/index.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { FIXED_UUID, host, sparseFile } from '../unit/e2fs/host.js';

let dir: string;
let image: string;

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  dir = await tempDir();
  image = join(dir, 'fs.img');
  await sparseFile(image, 64 << 20);
  expect((await host('mke2fs', ['-q', '-F', '-t', 'ext3', '-L', 'data', '-U', FIXED_UUID, image])).exitCode).toBe(0);
});

afterAll(async () => {
  await closeE2fsPool();
});

describe('diskwright info', () => {
  it('prints the superblock as data with --json', async () => {
    const result = await runInProcess(['info', image, '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({ kind: 'ext3', uuid: FIXED_UUID, label: 'data', blockSize: 1024, blocksCount: 65536, needsRecovery: false, state: 'clean' });
    expect(json.features).toContain('has_journal');
    expect(json.fields['Inode count']).toBe((await host('dumpe2fs', ['-h', image])).stdout.match(/Inode count:\s+(\d+)/)![1]);
  });

  it('prints "Name: value" lines without --json', async () => {
    const result = await runInProcess(['info', image]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Filesystem volume name: +data$/m);
    expect(result.stdout).toMatch(/^Block count: +65536$/m);
  });

  it('reports a journal that needs recovery', async () => {
    const dirty = join(dir, 'dirty.img');
    await copyFile(image, dirty);
    expect((await host('debugfs', ['-w', '-R', 'feature needs_recovery', dirty])).exitCode).toBe(0);
    const json = await runInProcess(['info', dirty, '--json']);
    expect(JSON.parse(json.stdout).needsRecovery).toBe(true);
    const text = await runInProcess(['info', dirty]);
    expect(text.code).toBe(0);
    expect(text.stderr).toMatch(/journal .* needs recovery.*diskwright fsck --fix/);
  });

  it('shows the image facts and a one-line note when there is no ext filesystem at the start', async () => {
    const junk = join(dir, 'junk.img');
    await writeFile(junk, Buffer.alloc(1 << 20, 0x41));
    const result = await runInProcess(['info', junk]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('file format: raw\nvirtual size: 1.0 MiB (1048576 bytes)');
    expect(result.stderr).toMatch(/^diskwright: note: no ext2\/3\/4 filesystem in .*junk\.img: no superblock at byte 1024/);
    const partition = await runInProcess(['info', junk, '--partition', '1']);
    expect(partition.code).toBe(1);
    expect(partition.stdout).toBe('');
  });
});
