import { describe, expect, it } from 'vitest';
import { readdir, stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createImage } from '../../../src/io/create.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

describe('createImage', () => {
  it('creates a sparse file of the exact size that uses (almost) no blocks', async () => {
    const dir = await tempDir();
    const path = join(dir, 'disk.img');
    await createImage(path, 8 * 2 ** 30);
    const info = await stat(path);
    expect(info.size).toBe(8 * 2 ** 30);
    expect(info.blocks * 512).toBeLessThanOrEqual(64 * 1024);
    expect(await readdir(dir)).toEqual(['disk.img']);
  });

  it('refuses to replace an existing file without force and keeps its bytes', async () => {
    const dir = await tempDir();
    const path = join(dir, 'disk.img');
    await writeFile(path, 'precious');
    await expect(createImage(path, 4096)).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_EXISTS'));
    expect(await readFile(path, 'utf8')).toBe('precious');
    await createImage(path, 4096, { force: true });
    expect((await stat(path)).size).toBe(4096);
    expect(await readdir(dir)).toEqual(['disk.img']);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects size %s', async (size) => {
    const dir = await tempDir();
    await expect(createImage(join(dir, 'x.img'), size)).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_INVALID_ARGUMENT'));
    expect(await readdir(dir)).toEqual([]);
  });
});
