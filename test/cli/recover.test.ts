import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

describe('diskwright recover', async () => {
  const dir = await tempDir();

  it('answers "nothing to roll back" with exit 0 for an image file without a record', async () => {
    const image = join(dir, 'plain.img');
    writeFileSync(image, Buffer.alloc(4096));
    const result = await runInProcess(['recover', image]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${image}: no interrupted write to roll back\n`);
  });

  it.each([
    ['a missing path', (): string => join(dir, 'typo.img'), /image .*typo\.img not found \[E_NOT_FOUND\]/],
    ['a directory', (): string => { const d = join(dir, 'a-dir'); mkdirSync(d, { recursive: true }); return d; }, /a-dir is not a regular file \[E_INVALID_ARGUMENT\]/],
    ['a FIFO', (): string => { const f = join(dir, 'a-fifo'); execFileSync('mkfifo', [f]); return f; }, /a-fifo is not a regular file \[E_INVALID_ARGUMENT\]/],
  ])('refuses %s in one line instead of reporting nothing to roll back', async (_what, make, message) => {
    const result = await runInProcess(['recover', make()]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.split('\n')[0]).toMatch(message);
    expect(result.stdout).toBe('');
  });

  it('gives the refusal as JSON with --json', async () => {
    const result = await runInProcess(['recover', join(dir, 'missing.img'), '--json']);
    expect(result.code).not.toBe(0);
    expect(JSON.parse(result.stderr || result.stdout)).toMatchObject({ error: { code: 'E_NOT_FOUND' } });
  });
});
