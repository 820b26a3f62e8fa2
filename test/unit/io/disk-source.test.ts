import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AllocationExtent, Disk } from '../../../src/disk/types.js';
import { copyUsedBlocks } from '../../../src/io/used-copy.js';
import { tempDir } from '../../helpers/tmp.js';

const MiB = 1 << 20;

/**
 * A Disk that is not a raw file (so the engine reads it through Disk.read), backed by a buffer, whose
 * allocation reports `zero` outside `data`; reading any byte of a zero range is a test failure.
 */
function strictDisk(bytes: Buffer, data: readonly { position: number; length: number }[]): Disk & { reads: number } {
  const isData = (at: number): boolean => data.some((d) => d.position <= at && at < d.position + d.length);
  const disk = {
    size: bytes.length,
    readOnly: true,
    format: 'qcow2' as const,
    path: 'strict.img',
    reads: 0,
    read(buffer: Uint8Array, position: number): void {
      disk.reads += 1;
      for (let at = position; at < position + buffer.length; at += 4096) {
        if (!isData(at)) throw new Error(`read of a hole at ${at}`);
      }
      buffer.set(bytes.subarray(position, position + buffer.length));
    },
    write: () => {
      throw new Error('read-only');
    },
    flush: () => undefined,
    discard: () => {
      throw new Error('read-only');
    },
    allocation(position: number, length: number): AllocationExtent[] {
      const out: AllocationExtent[] = [];
      let at = position;
      for (const d of data) {
        const start = Math.max(at, d.position);
        const end = Math.min(position + length, d.position + d.length);
        if (end <= start) continue;
        if (start > at) out.push({ position: at, length: start - at, state: 'zero' });
        out.push({ position: start, length: end - start, state: 'data' });
        at = end;
      }
      if (at < position + length) out.push({ position: at, length: position + length - at, state: 'zero' });
      return out;
    },
    close: () => undefined,
  };
  return disk;
}

describe('the copy engine over a Disk', () => {
  it('reads only the ranges the Disk reports as data, and the copy equals the Disk', async () => {
    const bytes = Buffer.alloc(64 * MiB);
    // Far apart (no small-gap coalescing between them), one not 4 KiB aligned in length.
    const data = [
      { position: 0, length: 3 * MiB },
      { position: 20 * MiB, length: 4096 * 7 },
      { position: 50 * MiB, length: 5 * MiB },
    ];
    for (const d of data) randomBytes(d.length).copy(bytes, d.position);
    const disk = strictDisk(bytes, data);
    const out = join(await tempDir(), 'copy.img');
    const summary = await copyUsedBlocks(disk, out, { size: 80 * MiB });
    expect(summary.mode).toBe('full');
    expect(summary.readBytes).toBe(8 * MiB + 4096 * 7);
    expect(disk.reads).toBeGreaterThan(0);
    const copy = await readFile(out);
    expect(copy.length).toBe(80 * MiB);
    expect(copy.subarray(0, 64 * MiB).equals(bytes)).toBe(true);
    expect(copy.subarray(64 * MiB).every((b) => b === 0)).toBe(true);
    expect((await stat(out)).blocks * 512).toBeLessThanOrEqual(8 * MiB + 4096 * 7 + 64 * 1024);
  });
});
