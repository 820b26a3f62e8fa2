import { open, type FileHandle } from 'node:fs/promises';
import { DiskwrightError, InvalidArgumentError, throwIfAborted } from '../errors.js';
import { readUsedBlockRanges } from '../extmeta/index.js';
import { openImage } from '../disk/open.js';
import type { Disk } from '../disk/types.js';
import { copyToHandle, openSource, type CopyJob, type CopyOptions, type CopySummary } from './copy.js';
import { alignExtents, type Extent } from './extents.js';
import { HOLE_BLOCK } from './zero.js';

/** Options of {@link copyUsedBlocks}. */
export interface UsedCopyOptions extends Omit<CopyOptions, 'overwrite'> {
  /** Size of the output (the instance disk size); a used-blocks copy never cuts below the source size. */
  readonly size: number;
}

/** What {@link copyUsedBlocks} did. */
export interface UsedCopySummary extends CopySummary {
  /** `only-used`: allocated ext blocks only; `full`: the whole file (the bitmaps could not be read). */
  readonly mode: 'only-used' | 'full';
}

/**
 * Engine settings of this copy. Its source is a template read again for every instance, so reads
 * go through the page cache (a warm template is a memcpy; O_DIRECT re-reads the disk every time),
 * one at a time in 8 MiB pieces: fewer hand-offs to libuv's pool, which are slow while e2fsck
 * workers hold the cores. Measured on the seed template (1.5 GiB allocated), the copy step of
 * `bench/instance.mjs`, 16 interleaved runs, medians: 8 MiB ×1 buffered 0.53 s, the former
 * synchronous 1 MiB loop 0.75 s; in other interleaved sets 2 MiB ×2 buffered 1.5 s (copy alone
 * 0.42 s), 2 MiB ×8 O_DIRECT 2.0 s, 2 MiB ×1 on the main thread (readSync) 1.2 s.
 */
export const USED_COPY_DEFAULTS = { direct: false, concurrency: 1, chunkSize: 8 << 20 } as const satisfies CopyOptions;

/** The allocated blocks of the ext filesystem in `src` as whole 4 KiB extents, or undefined when unreadable. */
async function usedExtentsOrNothing(src: Disk): Promise<Extent[] | undefined> {
  try {
    const ranges = await readUsedBlockRanges(src);
    // Whole 4 KiB blocks: holes in the output have that granularity anyway.
    return alignExtents(ranges.map((r) => ({ start: Number(r.start), length: Number(r.length) })), HOLE_BLOCK);
  } catch (error) {
    if (error instanceof DiskwrightError && error.code === 'E_ABORTED') throw error;
    return undefined;
  }
}

async function createExclusive(dst: string): Promise<FileHandle> {
  try {
    return await open(dst, 'wx', 0o644);
  } catch (error) {
    throw new DiskwrightError('E_IO', `cannot create ${dst}: ${(error as Error).message}`, {
      path: dst,
      hint: (error as NodeJS.ErrnoException).code === 'EEXIST' ? 'the file exists: remove it or pick another name' : undefined,
      cause: error,
    });
  }
}

/**
 * Copies an ext2/3/4 image (a path, opened through the block layer read-only, or an open Disk the
 * caller keeps) into a NEW file `dst` (created exclusively; the caller owns its removal and its
 * fsync — the instance pipeline fsyncs once before its rename) with the io copy engine, reading
 * only the blocks the filesystem has allocated (its block bitmaps) that the source stores (holes
 * of a raw file, unallocated qcow2 clusters are skipped): on a template that is mostly free space
 * that is ~1/5 of the bytes. Free blocks become holes (stale bytes there are not copied, which
 * also keeps old template data out of instances), and so do all-zero blocks. The result is
 * extended to `size`. When the bitmaps cannot be read (not ext, unsupported layout) it falls back
 * to a whole-image sparse copy resized to `size`.
 */
export async function copyUsedBlocks(src: string | Disk, dst: string, options: UsedCopyOptions): Promise<UsedCopySummary> {
  if (!Number.isSafeInteger(options.size) || options.size < 0) {
    throw new InvalidArgumentError(`Expected \`size\` to be a non-negative whole number of bytes, got \`${options.size}\``);
  }
  throwIfAborted(options.signal);
  if (typeof src !== 'string') return copyDiskUsedBlocks(src, dst, options);
  const disk = openImage(src, { readOnly: true });
  try {
    return await copyDiskUsedBlocks(disk, dst, options);
  } finally {
    disk.close();
  }
}

async function copyDiskUsedBlocks(disk: Disk, dst: string, options: UsedCopyOptions): Promise<UsedCopySummary> {
  const engine: CopyOptions = { ...USED_COPY_DEFAULTS, ...options };
  const started = performance.now();
  const readExtents = await usedExtentsOrNothing(disk);
  // Aborted while the bitmaps were read: do not create the copy at all.
  throwIfAborted(options.signal);
  const source = openSource(disk, engine);
  try {
    const job: CopyJob = readExtents
      ? { source, offset: 0, length: source.size, readExtents, outputSize: Math.max(options.size, source.size) }
      : { source, offset: 0, length: Math.min(options.size, source.size), outputSize: options.size };
    const handle = await createExclusive(dst);
    let copied: { dataBytes: number; readBytes: number };
    try {
      copied = await copyToHandle(job, handle, engine);
    } finally {
      await handle.close();
    }
    return {
      bytes: job.outputSize ?? job.length,
      ...copied,
      seconds: (performance.now() - started) / 1000,
      mode: readExtents ? 'only-used' : 'full',
    };
  } finally {
    source.close();
  }
}
