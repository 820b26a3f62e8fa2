import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBin, runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

describe('diskwright kernel (CLI)', () => {
  it('says in one line that a file without ext filesystem holds no kernel, exit 1, nothing written', async () => {
    const dir = await tempDir();
    const image = join(dir, 'zeros.img');
    await writeFile(image, Buffer.alloc(1 << 20));
    const result = await runBin(['kernel', image, '-o', join(dir, 'out')]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')[0]).toMatch(/^diskwright: .*\[E_[A-Z_]+\]$/);
    expect(result.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(await readdir(dir)).toEqual(['zeros.img']);
  });

  it('rejects a partition number that is not a number', async () => {
    const result = await runInProcess(['kernel', 'disk.img', '--partition', '../1', '-o', 'out']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Expected `--partition` to be a partition number, got `..\/1`/);
  });

  it('names the partitions that exist when --partition is wrong', async () => {
    const dir = await tempDir();
    const image = join(dir, 'nolabel.img');
    await writeFile(image, Buffer.alloc(1 << 20));
    const result = await runInProcess(['kernel', image, '--partition', '3', '-o', join(dir, 'out')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^diskwright: .*\[E_/);
  });
});
