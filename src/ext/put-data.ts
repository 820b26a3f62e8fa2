import { closeSync, openSync, readSync } from 'node:fs';
import { readAhead } from '../disk/io-hints.js';
import { ReadLane } from '../io/source.js';
import { fileAllocation } from '../disk/seek-data.js';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import type { ProgressCallback } from '../io/progress.js';
import type { FileExtent } from './inode-times.js';

/**
 * The data side of a large putFile: which blocks of the host file hold data (its holes are
 * found with SEEK_DATA/SEEK_HOLE, never read, and become holes of the file in the image), and the
 * copy of those blocks into the blocks debugfs allocated. The source is read ahead from the moment
 * it is opened, so the disk reads it while debugfs allocates.
 */

/** Logical blocks `[start, start + count)` of a file. */
export interface BlockRange {
  readonly start: number;
  readonly count: number;
}

/** Bytes per read/write when copying a file straight into its blocks. */
export const COPY_CHUNK = 8 * 1024 * 1024;
/** How far ahead of the copy the source is read (a window, so a huge file does not fill memory). */
const READ_AHEAD = 64 * 1024 * 1024;

/** An open host file to put, with the blocks that hold data. */
export interface PutSource {
  readonly path: string;
  readonly fd: number;
  readonly size: number;
  /** Logical blocks holding data, in order; a block with any data byte counts as data. */
  readonly dataBlocks: readonly BlockRange[];
  close(): void;
}

/**
 * Opens `path` (`size` bytes, as stat said), finds its data blocks of `blockSize` and starts
 * reading the first window ahead. Where the host cannot tell holes from data, every block is data.
 */
export function openPutSource(path: string, size: number, blockSize: number): PutSource {
  const fd = openSync(path, 'r');
  try {
    const extents = fileAllocation(fd, 0, size) ?? [{ position: 0, length: size, state: 'data' as const }];
    const dataBlocks: BlockRange[] = [];
    for (const extent of extents) {
      if (extent.state !== 'data' || extent.length === 0) continue;
      const start = Math.floor(extent.position / blockSize);
      const end = Math.ceil((extent.position + extent.length) / blockSize);
      const last = dataBlocks[dataBlocks.length - 1];
      if (last && last.start + last.count >= start) dataBlocks[dataBlocks.length - 1] = { start: last.start, count: Math.max(last.start + last.count, end) - last.start };
      else dataBlocks.push({ start, count: end - start });
    }
    let ahead = 0;
    for (const range of dataBlocks) {
      if (ahead >= READ_AHEAD) break;
      const length = Math.min(range.count * blockSize, READ_AHEAD - ahead);
      readAhead(fd, range.start * blockSize, length);
      ahead += length;
    }
    let open = true;
    return {
      path,
      fd,
      size,
      dataBlocks,
      close: () => {
        if (open) closeSync(fd);
        open = false;
      },
    };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * What to allocate for a file whose data is in `dataBlocks`: blocks 0..allocate-1 (up to the last
 * data block: a trailing hole is never allocated; debugfs `dw_alloc` allocates from block 0), and
 * `holes`, the whole-block holes below that. A file of holes only allocates nothing.
 */
export function allocationPlan(dataBlocks: readonly BlockRange[]): { allocate: number; holes: BlockRange[] } {
  const holes: BlockRange[] = [];
  let next = 0;
  for (const range of dataBlocks) {
    if (range.start > next) holes.push({ start: next, count: range.start - next });
    next = range.start + range.count;
  }
  return { allocate: next, holes };
}

/** Most holes one put punches (each is a debugfs command that edits the extent tree; named limit). */
export const MAX_PUNCHES = 4096;

/**
 * Which of `holes` to punch (the largest, at most {@link MAX_PUNCHES}, in logical order) and which
 * to keep allocated and zero instead: a source fragmented into many small holes would otherwise
 * cost one debugfs command per hole.
 */
export function choosePunches(holes: readonly BlockRange[]): { punch: BlockRange[]; zero: BlockRange[] } {
  if (holes.length <= MAX_PUNCHES) return { punch: [...holes], zero: [] };
  const largest = new Set([...holes].sort((a, b) => b.count - a.count || a.start - b.start).slice(0, MAX_PUNCHES));
  return { punch: holes.filter((h) => largest.has(h)), zero: holes.filter((h) => !largest.has(h)) };
}

/** The parts of `extents` (logical order) that map blocks in `ranges` (logical order). */
export function restrictToRanges(extents: readonly FileExtent[], ranges: readonly BlockRange[]): FileExtent[] {
  const out: FileExtent[] = [];
  let d = 0;
  for (const extent of extents) {
    const end = extent.logical + extent.length;
    while (d < ranges.length && ranges[d]!.start + ranges[d]!.count <= extent.logical) d += 1;
    for (let i = d; i < ranges.length && ranges[i]!.start < end; i += 1) {
      const from = Math.max(extent.logical, ranges[i]!.start);
      const to = Math.min(end, ranges[i]!.start + ranges[i]!.count);
      if (to > from) out.push({ logical: from, physical: extent.physical + (from - extent.logical), length: to - from });
    }
  }
  return out;
}

/**
 * Copies the source's bytes of `extents` into the file's blocks through `write` (filesystem
 * positions); the rest of the file's last block is zeroed. Keeps the read-ahead window ahead of
 * the copy. Yields to the event loop between chunks, so Ctrl-C is seen while a large file is copied.
 */
export async function copyIntoExtents(
  source: PutSource,
  write: (buffer: Buffer, position: number) => void,
  extents: readonly FileExtent[],
  blockSize: number,
  signal?: AbortSignal,
  onProgress?: ProgressCallback,
): Promise<void> {
  const { size, fd } = source;
  let copied = 0;
  // Page-aligned, so a raw image takes the copy with O_DIRECT (Disk.writeBulk).
  const buffer = new ReadLane(COPY_CHUNK).buffer;
  for (const extent of extents) {
    const start = extent.logical * blockSize;
    const end = Math.min((extent.logical + extent.length) * blockSize, size);
    for (let at = start; at < end; ) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      throwIfAborted(signal);
      const want = Math.min(COPY_CHUNK, end - at);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buffer, got, want - got, at + got);
        if (n === 0) throw new DiskwrightError('E_IO', `${source.path} shrank while it was being copied`, { path: source.path });
        got += n;
      }
      // The window moves with the copy (already-cached pages cost the kernel nothing).
      readAhead(fd, at + READ_AHEAD, got);
      write(buffer.subarray(0, got), extent.physical * blockSize + (at - start));
      at += got;
      copied += got;
      onProgress?.({ bytes: copied, total: size });
    }
    const blockEnd = (extent.logical + extent.length) * blockSize;
    if (end < blockEnd && end === size) write(Buffer.alloc(blockEnd - end), extent.physical * blockSize + (end - start));
  }
}
