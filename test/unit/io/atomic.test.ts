import { describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withAtomicOutput, withAtomicPath } from '../../../src/io/atomic.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

describe('withAtomicOutput', () => {
  it('renames the finished temp file over the target', async () => {
    const dir = await tempDir();
    const target = join(dir, 'out');
    await withAtomicOutput(target, async (handle) => {
      await handle.write(Buffer.from('done'));
    });
    expect(await readFile(target, 'utf8')).toBe('done');
    expect(await readdir(dir)).toEqual(['out']);
  });

  it('leaves neither target nor temp when the work fails', async () => {
    const dir = await tempDir();
    const target = join(dir, 'out');
    await expect(
      withAtomicOutput(target, async (handle) => {
        await handle.write(Buffer.from('half'));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await readdir(dir)).toEqual([]);
  });

  it('does not rename when the signal fires while the data is flushed', async () => {
    const dir = await tempDir();
    const target = join(dir, 'out');
    await writeFile(target, 'old');
    const controller = new AbortController();
    await expect(
      withAtomicOutput(
        target,
        async (handle) => {
          await handle.write(Buffer.from('new'));
          controller.abort(); // lands after the work, before the rename
        },
        { overwrite: true, signal: controller.signal },
      ),
    ).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_ABORTED'));
    expect(await readFile(target, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['out']);
  });

  it('withAtomicPath removes a temp the work created when it fails', async () => {
    const dir = await tempDir();
    await expect(
      withAtomicPath(join(dir, 'out'), async (temp) => {
        await writeFile(temp, 'x');
        throw new Error('tool failed');
      }),
    ).rejects.toThrow('tool failed');
    expect(await readdir(dir)).toEqual([]);
  });
});
