import { describe, expect, it } from 'vitest';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

describe('diskwright create', () => {
  it('makes a sparse image of the requested size (G and s units)', async () => {
    const dir = await tempDir();
    const image = join(dir, 'disk.img');
    const result = await runInProcess(['create', image, '--size', '8G']);
    expect(result.code).toBe(0);
    const info = await stat(image);
    expect(info.size).toBe(8 * 2 ** 30);
    expect(info.blocks).toBeLessThanOrEqual(128);
    const sectors = await runInProcess(['create', join(dir, 's.img'), '--size', '2048s', '--json']);
    expect(JSON.parse(sectors.stdout)).toEqual({ output: join(dir, 's.img'), size: 2048 * 512 });
  });

  it('refuses to overwrite without --force (exit 1, file intact) and overwrites with it', async () => {
    const dir = await tempDir();
    const image = join(dir, 'disk.img');
    await writeFile(image, 'data');
    const refused = await runInProcess(['create', image, '--size', '1M']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already exists.*E_EXISTS/);
    expect(refused.stderr).toMatch(/--force/);
    expect(await readFile(image, 'utf8')).toBe('data');
    expect((await runInProcess(['create', image, '--size', '1M', '--force'])).code).toBe(0);
    expect((await stat(image)).size).toBe(2 ** 20);
  });

  it('rejects a missing or malformed size with a usage error naming the option', async () => {
    const dir = await tempDir();
    const missing = await runInProcess(['create', join(dir, 'a.img')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--size is required/);
    const bad = await runInProcess(['create', join(dir, 'a.img'), '--size', '8X']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/`--size`.*`8X`/);
    expect(bad.stderr.split('\n').filter(Boolean).length).toBeLessThanOrEqual(2);
  });

  it('prints help with a usage line and an example', async () => {
    const help = await runInProcess(['create', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: diskwright create IMAGE --size SIZE/);
    expect(help.stdout).toMatch(/Example:/);
  });
});
