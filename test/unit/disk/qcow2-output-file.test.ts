import * as fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as libcModule from '../../../src/disk/libc.js';
import { OutputFile } from '../../../src/disk/qcow2/output-file.js';
import { pattern } from '../../helpers/qcow2.js';
import { tempDir } from '../../helpers/tmp.js';

// A pass-through spy: the fallback test sees whether OutputFile called fdatasync.
vi.mock('node:fs', async (original) => {
  const real = await original<typeof import('node:fs')>();
  return { ...real, fdatasync: vi.fn(real.fdatasync) };
});

/**
 * Writes `expected` in 37 KiB pieces in eight waves from the end to the start; the pieces of a
 * wave are all in flight at once, so write-backs start between waves and while writes run.
 */
async function writeBackwards(file: OutputFile, expected: Uint8Array): Promise<void> {
  const piece = 37 * 1024;
  const starts: number[] = [];
  for (let at = expected.length - piece; at > -piece; at -= piece) starts.push(Math.max(0, at));
  const wave = Math.ceil(starts.length / 8);
  for (let i = 0; i < starts.length; i += wave) {
    await Promise.all(starts.slice(i, i + wave).map((start) => file.write(expected.subarray(start, Math.min(expected.length, start + piece)), start)));
  }
  await file.settle();
  await file.close();
}

afterEach(() => {
  vi.restoreAllMocks();
  vi.mocked(fs.fdatasync).mockClear();
});

describe('OutputFile early write-back', () => {
  it('starts write-backs with sync_file_range(WRITE) over the whole file while writes are in flight, and keeps every byte', async () => {
    const real = libcModule.libc();
    expect(real, 'koffi loads libc on this host').toBeDefined();
    const calls: number[][] = [];
    vi.spyOn(libcModule, 'libc').mockReturnValue({
      ...real!,
      syncFileRange: (fd, offset, nbytes, flags, callback) => {
        calls.push([offset, nbytes, flags]);
        real!.syncFileRange(fd, offset, nbytes, flags, callback);
      },
    });
    const path = join(await tempDir('output-file-'), 'sfr.bin');
    const file = OutputFile.create(path, { writebackBytes: 64 * 1024 });
    const expected = pattern(4 * 1024 * 1024, 11);
    await writeBackwards(file, expected);
    expect(calls.length).toBeGreaterThan(1);
    // offset 0, length 0 (to the end), SYNC_FILE_RANGE_WRITE only: never waits, never flushes.
    for (const call of calls) expect(call).toEqual([0, 0, 2]);
    expect(fs.fdatasync).not.toHaveBeenCalled();
    expect(Buffer.compare(readFileSync(path), Buffer.from(expected))).toBe(0);
    await expect(file.write(new Uint8Array(1), 0)).rejects.toThrow(/after close/);
  });

  it('stops early write-backs for good once sync_file_range fails, and still writes every byte', async () => {
    const real = libcModule.libc()!;
    let calls = 0;
    vi.spyOn(libcModule, 'libc').mockReturnValue({
      ...real,
      syncFileRange: (_fd, _offset, _nbytes, _flags, callback) => {
        calls++;
        setImmediate(() => callback(-1));
      },
    });
    const path = join(await tempDir('output-file-'), 'nosfr.bin');
    const file = OutputFile.create(path, { writebackBytes: 64 * 1024 });
    const expected = pattern(2 * 1024 * 1024, 12);
    await writeBackwards(file, expected);
    expect(calls).toBe(1);
    expect(fs.fdatasync).not.toHaveBeenCalled();
    expect(Buffer.compare(readFileSync(path), Buffer.from(expected))).toBe(0);
  });

  it('falls back to background fdatasync where libc cannot be loaded', async () => {
    vi.spyOn(libcModule, 'libc').mockReturnValue(undefined);
    const path = join(await tempDir('output-file-'), 'fdatasync.bin');
    const file = OutputFile.create(path, { writebackBytes: 64 * 1024 });
    const expected = pattern(2 * 1024 * 1024, 13);
    await writeBackwards(file, expected);
    expect(fs.fdatasync).toHaveBeenCalled();
    expect(Buffer.compare(readFileSync(path), Buffer.from(expected))).toBe(0);
  });
});
