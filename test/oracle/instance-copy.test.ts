import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { copyUsedBlocks } from '../../src/io/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfsCat, hostFsck, sha256, TOOL_ENV } from './instance-helpers.js';

let dir: string;
beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  dir = await tempDir('diskwright-instance-copy-');
});

describe('copyUsedBlocks', () => {
  it('copies only allocated blocks: the copy is fsck-clean, files are identical, deleted data is gone', async () => {
    const image = join(dir, 'fs.img');
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', image, '64M'], { env: TOOL_ENV });
    const keep = join(dir, 'keep.bin');
    const gone = join(dir, 'gone.bin');
    await writeFile(keep, randomBytes(3 << 20));
    await writeFile(gone, Buffer.alloc(8 << 20, 0x5a));
    await execa('debugfs', ['-w', '-R', `write ${keep} /keep`, image], { env: TOOL_ENV });
    await execa('debugfs', ['-w', '-R', `write ${gone} /gone`, image], { env: TOOL_ENV });
    await execa('debugfs', ['-w', '-R', 'rm /gone', image], { env: TOOL_ENV });
    const before = await sha256(image);

    const out = join(dir, 'copy.img');
    const summary = await copyUsedBlocks(image, out, { size: 128 << 20 });
    expect(summary.bytes).toBe(128 << 20);
    expect((await stat(out)).size).toBe(128 << 20);
    expect((await hostFsck(out)).exitCode).toBe(0);
    const dumped = join(dir, 'keep.dumped');
    await execa('debugfs', ['-R', `dump /keep ${dumped}`, out], { env: TOOL_ENV });
    expect(Buffer.compare(await readFile(dumped), await readFile(keep))).toBe(0);
    // The deleted file's 0x5a bytes lived in now-free blocks: they are not in the copy.
    const copied = await readFile(out);
    expect(copied.includes(Buffer.alloc(4096, 0x5a))).toBe(false);
    expect((await readFile(image)).includes(Buffer.alloc(4096, 0x5a))).toBe(true);
    expect(summary.dataBytes).toBeLessThan(16 << 20);
    expect(await sha256(image)).toBe(before);
    expect(await debugfsCat(out, '/lost+found')).toBeDefined();
  });

  it('falls back to a whole-file sparse copy for something that is not ext', async () => {
    const src = join(dir, 'blob');
    const data = randomBytes(1 << 20);
    await writeFile(src, data);
    const out = join(dir, 'blob.copy');
    await copyUsedBlocks(src, out, { size: 2 << 20 });
    const copied = await readFile(out);
    expect(copied.length).toBe(2 << 20);
    expect(Buffer.compare(copied.subarray(0, 1 << 20), data)).toBe(0);
  });

  it('honours an aborted signal', async () => {
    const image = join(dir, 'abort.img');
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', image, '16M'], { env: TOOL_ENV });
    const controller = new AbortController();
    controller.abort();
    await expect(copyUsedBlocks(image, join(dir, 'abort.out'), { size: 16 << 20, signal: controller.signal })).rejects.toMatchObject({ code: 'E_ABORTED' });
  });

  it('refuses to overwrite an existing destination', async () => {
    const image = join(dir, 'exists.img');
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', image, '16M'], { env: TOOL_ENV });
    await writeFile(join(dir, 'exists.out'), 'mine');
    await expect(copyUsedBlocks(image, join(dir, 'exists.out'), { size: 16 << 20 })).rejects.toThrow(/EEXIST|exists/);
    expect(await readFile(join(dir, 'exists.out'), 'utf8')).toBe('mine');
  });
});
