import { describe, expect, it } from 'vitest';
import { open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { copyRange, sparseCopyFile } from '../../../src/io/copy.js';
import { isDiskwrightError } from '../../../src/errors.js';
import type { Progress } from '../../../src/io/progress.js';
import { tempDir } from '../../helpers/tmp.js';

/** A sparse file of `size` bytes with random data written at the given [offset, length] spots. */
async function sparseSource(path: string, size: number, spots: readonly (readonly [number, number])[]): Promise<Buffer> {
  const model = Buffer.alloc(size);
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
    for (const [offset, length] of spots) {
      const data = randomBytes(length);
      data.copy(model, offset);
      await handle.write(data, 0, length, offset);
    }
  } finally {
    await handle.close();
  }
  return model;
}

async function allocated(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

describe('copyRange', () => {
  it('copies exactly the range, leaves zero blocks as holes and sets the exact final size', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    const model = await sparseSource(src, 64 << 20, [[1 << 20, 300_000], [40 << 20, 5000], [(64 << 20) - 4096, 10]]);
    for (const direct of [true, false]) {
      const out = join(dir, `out-${direct}`);
      const offset = 512 * 3; // not 4 KiB aligned on purpose
      const length = (64 << 20) - offset - 4096 * 2 + 17; // ends in the middle of a block
      const summary = await copyRange(src, out, { offset, length, direct });
      const bytes = await readFile(out);
      expect(bytes.length).toBe(length);
      expect(bytes.equals(model.subarray(offset, offset + length))).toBe(true);
      expect(summary.bytes).toBe(length);
      expect(summary.dataBytes).toBeLessThan(320_000);
      expect(await allocated(out)).toBeLessThanOrEqual(summary.dataBytes + 4 * 4096);
    }
  });

  it('keeps trailing zeros as a hole of the right size', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    await sparseSource(src, 8 << 20, [[0, 100]]);
    const out = join(dir, 'out');
    await copyRange(src, out, { offset: 0, length: 8 << 20 });
    expect((await stat(out)).size).toBe(8 << 20);
    expect(await allocated(out)).toBeLessThanOrEqual(8192);
  });

  it('refuses a range past the end of the source with E_TRUNCATED and writes nothing', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    await sparseSource(src, 1 << 20, []);
    await expect(copyRange(src, join(dir, 'out'), { offset: 512, length: 1 << 20 })).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_TRUNCATED'));
    expect(await readdir(dir)).toEqual(['src.img']);
  });

  it('refuses to replace an existing output without overwrite and replaces it with', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    const model = await sparseSource(src, 1 << 20, [[0, 4096]]);
    const out = join(dir, 'out');
    await writeFile(out, 'keep me');
    await expect(copyRange(src, out, { offset: 0, length: 4096 })).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_EXISTS'));
    expect(await readFile(out, 'utf8')).toBe('keep me');
    await copyRange(src, out, { offset: 0, length: 4096, overwrite: true });
    expect((await readFile(out)).equals(model.subarray(0, 4096))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['out', 'src.img']);
  });

  it('reports monotonic progress ending at the total', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    await sparseSource(src, 256 << 20, [[0, 1 << 20]]);
    const seen: Progress[] = [];
    await copyRange(src, join(dir, 'out'), { offset: 0, length: 256 << 20, chunkSize: 64 << 10, onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toMatchObject({ bytes: 256 << 20, total: 256 << 20 });
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.bytes).toBeGreaterThanOrEqual(seen[i - 1]!.bytes);
  });

  it('stops on an AbortSignal mid-copy and leaves neither the output nor a temp file', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    await sparseSource(src, 1 << 30, [[0, 1 << 20], [512 << 20, 1 << 20]]);
    const controller = new AbortController();
    let abortedAt = -1;
    const run = copyRange(src, join(dir, 'out'), {
      offset: 0,
      length: 1 << 30,
      chunkSize: 16 << 10,
      signal: controller.signal,
      onProgress: (p) => {
        if (abortedAt < 0 && p.bytes < (1 << 30)) {
          abortedAt = p.bytes;
          controller.abort();
        }
      },
    });
    await expect(run).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_ABORTED'));
    expect(abortedAt).toBeGreaterThanOrEqual(0);
    expect(await readdir(dir)).toEqual(['src.img']);
  });

  it('does not start when the signal has already fired', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    await sparseSource(src, 1 << 20, []);
    await expect(copyRange(src, join(dir, 'out'), { offset: 0, length: 4096, signal: AbortSignal.abort() })).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_ABORTED'));
    expect(await readdir(dir)).toEqual(['src.img']);
  });

  it('names a missing source', async () => {
    const dir = await tempDir();
    await expect(copyRange(join(dir, 'nope.img'), join(dir, 'out'), { offset: 0, length: 1 })).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_NOT_FOUND'));
  });

  it.each([[-1, 10], [0, 1.5], [Number.NaN, 1]])('rejects offset %s / length %s', async (offset, length) => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    await sparseSource(src, 4096, []);
    await expect(copyRange(src, join(dir, 'out'), { offset, length })).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_INVALID_ARGUMENT'));
  });
});

describe('sparseCopyFile', () => {
  it('copies a whole file sparsely', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    const model = await sparseSource(src, 32 << 20, [[4096, 8192], [20 << 20, 1]]);
    const out = join(dir, 'copy.img');
    const summary = await sparseCopyFile(src, out);
    expect((await readFile(out)).equals(model)).toBe(true);
    expect(summary.dataBytes).toBe(8192 + 4096);
    expect(await allocated(out)).toBeLessThanOrEqual(4 * 4096);
  });

  it('grows the copy in the same pass (hole at the end) and can cut it', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src.img');
    const model = await sparseSource(src, 1 << 20, [[0, 1 << 20]]);
    const grown = join(dir, 'grown.img');
    await sparseCopyFile(src, grown, { size: 64 << 20 });
    const bytes = await readFile(grown);
    expect(bytes.length).toBe(64 << 20);
    expect(bytes.subarray(0, 1 << 20).equals(model)).toBe(true);
    expect(await allocated(grown)).toBeLessThanOrEqual((1 << 20) + 8192);
    const cut = join(dir, 'cut.img');
    await sparseCopyFile(src, cut, { size: 1000 });
    expect((await readFile(cut)).equals(model.subarray(0, 1000))).toBe(true);
  });
});
