import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openResolved, RawFileDisk, type Disk } from '../../../src/disk/index.js';
import { createQcow2 } from '../../../src/disk/qcow2/index.js';
import { MIN_SKIPPED_READ, ZERO_MAP_WINDOW, ZeroSkippingDisk, zeroRanges } from '../../../src/e2fs/zero-reads.js';
import { tempDir } from '../../helpers/tmp.js';

const MiB = 1 << 20;

/** A sparse raw file of `size` bytes with `0xa5` bytes at `writes` (everything else a hole). */
async function sparseFile(dir: string, size: number, writes: readonly { at: number; length: number }[]): Promise<string> {
  const file = join(dir, 'base.img');
  execFileSync('truncate', ['-s', String(size), file]);
  const fd = openSync(file, 'r+');
  for (const w of writes) writeSync(fd, Buffer.alloc(w.length, 0xa5), 0, w.length, w.at);
  closeSync(fd);
  return file;
}

/** A Disk that counts the reads that reach it. */
function counting(inner: Disk): Disk & { reads: number } {
  const disk = Object.create(inner) as Disk & { reads: number };
  disk.reads = 0;
  disk.read = (buffer, position) => {
    disk.reads++;
    inner.read(buffer, position);
  };
  return disk;
}

/** Deterministic pseudo-random numbers (a failing case can be rerun). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('ZeroSkippingDisk', () => {
  it('answers a read inside a hole of the raw file without reading it, and reads data as it is', async () => {
    const dir = await tempDir();
    const file = await sparseFile(dir, 16 * MiB, [{ at: 3 * MiB, length: 8192 }]);
    const raw = counting(RawFileDisk.open(file, { readOnly: true }));
    const disk = new ZeroSkippingDisk(raw);
    const buffer = Buffer.alloc(32768, 0xff);
    disk.read(buffer, 5 * MiB);
    expect(buffer.equals(Buffer.alloc(32768))).toBe(true);
    expect(raw.reads).toBe(0);
    disk.read(buffer.subarray(0, 8192), 3 * MiB);
    expect(buffer.subarray(0, 8192).equals(Buffer.alloc(8192, 0xa5))).toBe(true);
    expect(raw.reads).toBe(1);
    disk.close();
  });

  it('follows a qcow2 chain down to the raw file: zero clusters and the backing file’s holes read as zeros unread', async () => {
    const dir = await tempDir();
    const base = await sparseFile(dir, 8 * MiB, [{ at: 1 * MiB, length: 4096 }, { at: 6 * MiB, length: 65536 }]);
    const top = join(dir, 'top.qcow2');
    createQcow2(top, { size: 12 * MiB, clusterSize: 65536, backingFile: base, backingFormat: 'raw' });
    const writable = openResolved(top, { format: 'qcow2', source: 'forced' }, { readOnly: false });
    writable.write(Buffer.alloc(65536, 0x3c), 2 * MiB);
    writable.discard(6 * MiB, 65536); // a zero cluster over the backing file's data
    writable.close();
    const chain = openResolved(top, { format: 'qcow2', source: 'forced' }, { readOnly: true });
    const zeros = zeroRanges(chain, 0, chain.size);
    const inZero = (at: number): boolean => zeros.some((z) => z.position <= at && at < z.position + z.length);
    expect(inZero(0)).toBe(true);
    expect(inZero(1 * MiB)).toBe(false); // backing data
    expect(inZero(2 * MiB)).toBe(false); // overlay data
    expect(inZero(6 * MiB)).toBe(true); // the overlay's zero cluster
    expect(inZero(7 * MiB)).toBe(true); // a hole of the backing file
    expect(inZero(10 * MiB)).toBe(false); // past the smaller backing file: not vouched for, read
    chain.close();
  });

  it('reads exactly what the Disk below reads, at any position and length', async () => {
    const dir = await tempDir();
    const base = await sparseFile(dir, 8 * MiB, [{ at: 1 * MiB + 100, length: 5000 }, { at: 4 * MiB - 3000, length: 70000 }]);
    const top = join(dir, 'top.qcow2');
    createQcow2(top, { size: 10 * MiB, clusterSize: 4096, backingFile: base, backingFormat: 'raw' });
    const writable = openResolved(top, { format: 'qcow2', source: 'forced' }, { readOnly: false });
    writable.write(Buffer.alloc(12288, 0x11), 2 * MiB - 4096);
    writable.discard(4 * MiB, 8192);
    writable.close();
    const open = (): Disk => openResolved(top, { format: 'qcow2', source: 'forced' }, { readOnly: true });
    const plain = open();
    const skipping = new ZeroSkippingDisk(open());
    const random = lcg(7);
    for (let i = 0; i < 400; i++) {
      const length = 1 + Math.floor(random() * (i % 2 === 0 ? 70000 : 4096));
      const position = Math.floor(random() * (plain.size - length));
      const a = Buffer.alloc(length, 0xee);
      const b = Buffer.alloc(length, 0x77);
      plain.read(a, position);
      skipping.read(b, position);
      expect(b.equals(a), `read of ${length} at ${position}`).toBe(true);
    }
    // Across a window boundary and at the very end.
    for (const [position, length] of [[ZERO_MAP_WINDOW - 512, 1024], [plain.size - 4096, 4096]] as const) {
      const a = Buffer.alloc(length, 1);
      const b = Buffer.alloc(length, 2);
      plain.read(a, position);
      skipping.read(b, position);
      expect(b.equals(a)).toBe(true);
    }
    expect(() => skipping.read(Buffer.alloc(16), plain.size - 8)).toThrow(/outside/);
    plain.close();
    skipping.close();
  });

  it('reads a single block as it is without mapping its window, and maps the window for an inode-table-sized read', async () => {
    const dir = await tempDir();
    const file = await sparseFile(dir, 16 * MiB, [{ at: 3 * MiB, length: 8192 }]);
    const raw = counting(RawFileDisk.open(file, { readOnly: true }));
    let maps = 0;
    const allocation = raw.allocation.bind(raw);
    raw.allocation = (position, length) => {
      maps++;
      return allocation(position, length);
    };
    const disk = new ZeroSkippingDisk(raw);
    const block = Buffer.alloc(4096, 0xff);
    disk.read(block, 5 * MiB); // a hole, but one block: read, no window map
    expect(block.equals(Buffer.alloc(4096))).toBe(true);
    expect([raw.reads, maps]).toEqual([1, 0]);
    const chunk = Buffer.alloc(MIN_SKIPPED_READ, 0xff);
    disk.read(chunk, 5 * MiB + 4096); // the same window, mapped once, answered unread
    disk.read(chunk, 5 * MiB + 4096 + MIN_SKIPPED_READ);
    expect(chunk.equals(Buffer.alloc(MIN_SKIPPED_READ))).toBe(true);
    expect([raw.reads, maps]).toEqual([1, 1]);
    disk.close();
  });

  it('refuses a writable Disk (a hole it writes would still be answered as zeros)', async () => {
    const dir = await tempDir();
    const file = await sparseFile(dir, MiB, []);
    const raw = RawFileDisk.open(file, { readOnly: false });
    expect(() => new ZeroSkippingDisk(raw)).toThrow(/read-only/);
    raw.close();
  });
});
