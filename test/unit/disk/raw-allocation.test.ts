import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PartitionWindow, RawFileDisk, type AllocationExtent } from '../../../src/disk/index.js';
import { canSeekData } from '../../../src/disk/seek-data.js';
import { tempDir } from '../../helpers/tmp.js';

const MiB = 1 << 20;

/** A sparse file of `size` bytes (truncate(1)) with non-zero bytes written at `writes`. */
async function sparseFile(size: number, writes: readonly { at: number; length: number }[]): Promise<string> {
  const file = join(await tempDir(), 'sparse.img');
  execFileSync('truncate', ['-s', String(size), file]);
  const fd = openSync(file, 'r+');
  for (const w of writes) writeSync(fd, Buffer.alloc(w.length, 0xa5), 0, w.length, w.at);
  closeSync(fd);
  return file;
}

function stateAt(extents: readonly AllocationExtent[], at: number): string | undefined {
  return extents.find((e) => e.position <= at && at < e.position + e.length)?.state;
}

/** Extents are in order, touch each other and cover `[position, position + length)` exactly. */
function expectCovering(extents: readonly AllocationExtent[], position: number, length: number): void {
  let at = position;
  for (const e of extents) {
    expect(e.position).toBe(at);
    expect(e.length).toBeGreaterThan(0);
    at += e.length;
  }
  expect(at).toBe(position + length);
}

describe('RawFileDisk.allocation', () => {
  it('the host can seek data and holes here (CI must have it, or every copy reads its holes)', () => {
    expect(canSeekData()).toBe(true);
  });

  it('reports the holes of a truncate-made sparse file as zero and the written blocks as data', async () => {
    const file = await sparseFile(64 * MiB, [
      { at: 1 * MiB, length: 8192 },
      { at: 40 * MiB, length: MiB },
    ]);
    const disk = RawFileDisk.open(file, { readOnly: true });
    const extents = disk.allocation(0, disk.size);
    disk.close();
    expectCovering(extents, 0, 64 * MiB);
    expect(stateAt(extents, 0)).toBe('zero');
    expect(stateAt(extents, MiB)).toBe('data');
    expect(stateAt(extents, MiB + 8191)).toBe('data');
    expect(stateAt(extents, 20 * MiB)).toBe('zero');
    expect(stateAt(extents, 40 * MiB + MiB - 1)).toBe('data');
    expect(stateAt(extents, 63 * MiB)).toBe('zero');
    const data = extents.filter((e) => e.state === 'data').reduce((sum, e) => sum + e.length, 0);
    // The filesystem may round to its block size, never by whole megabytes.
    expect(data).toBeLessThanOrEqual(MiB + 8192 + 2 * 65536);
  });

  it('reports a range punched with fallocate -p as a hole', async () => {
    const file = await sparseFile(8 * MiB, [{ at: 0, length: 8 * MiB }]);
    execFileSync('fallocate', ['-p', '-o', String(2 * MiB), '-l', String(3 * MiB), file]);
    const disk = RawFileDisk.open(file, { readOnly: true });
    expect(disk.allocation(0, disk.size)).toEqual([
      { position: 0, length: 2 * MiB, state: 'data' },
      { position: 2 * MiB, length: 3 * MiB, state: 'zero' },
      { position: 5 * MiB, length: 3 * MiB, state: 'data' },
    ]);
    // A range that starts and ends inside extents is clipped to the range.
    expect(disk.allocation(MiB, 2 * MiB)).toEqual([
      { position: MiB, length: MiB, state: 'data' },
      { position: 2 * MiB, length: MiB, state: 'zero' },
    ]);
    disk.close();
  });

  it('a discarded range is a hole afterwards, and a window shifts the extents to its own positions', async () => {
    const file = await sparseFile(4 * MiB, [{ at: 0, length: 4 * MiB }]);
    const disk = RawFileDisk.open(file, { readOnly: false });
    disk.discard(MiB, MiB);
    const window = new PartitionWindow(disk, MiB / 2, 2 * MiB);
    expect(window.allocation(0, 2 * MiB)).toEqual([
      { position: 0, length: MiB / 2, state: 'data' },
      { position: MiB / 2, length: MiB, state: 'zero' },
      { position: MiB + MiB / 2, length: MiB / 2, state: 'data' },
    ]);
    disk.close();
  });

  it('every range reported as zero reads as zeros, and a file with no data is one hole', async () => {
    const writes = Array.from({ length: 12 }, (_, i) => ({ at: (i * 7919 * 4096) % (30 * MiB), length: 4096 * (1 + (i % 5)) }));
    const file = await sparseFile(32 * MiB, writes);
    const disk = RawFileDisk.open(file, { readOnly: true });
    for (const e of disk.allocation(0, disk.size)) {
      if (e.state !== 'zero') continue;
      const bytes = Buffer.alloc(e.length);
      disk.read(bytes, e.position);
      expect(bytes.every((b) => b === 0)).toBe(true);
    }
    disk.close();
    const empty = RawFileDisk.open(await sparseFile(16 * MiB, []), { readOnly: true });
    expect(empty.allocation(0, empty.size)).toEqual([{ position: 0, length: 16 * MiB, state: 'zero' }]);
    expect(empty.allocation(5, 0)).toEqual([]);
    empty.close();
  });
});
