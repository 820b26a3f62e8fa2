import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { AbortedError, DiskwrightError, InvalidArgumentError, throwIfAborted } from '../errors.js';
import { withAtomicOutput } from './atomic.js';
import { RawFileDisk } from '../disk/raw.js';
import type { Disk } from '../disk/types.js';
import { recordFormat } from '../disk/format-record.js';
import { DiskSource } from './disk-source.js';
import { clipExtents, coalesceExtents, intersectExtents, type Extent } from './extents.js';
import type { ProgressCallback } from './progress.js';
import { dataRuns, HOLE_BLOCK } from './zero.js';

/** Read size of the copy loop: large enough for full-speed sequential I/O, small enough to stay cache-friendly. */
export const DEFAULT_CHUNK_BYTES = 2 << 20;
/**
 * Reads kept in flight (each with its own buffer): the disk sees a queue instead of one request
 * at a time. Memory use is about `DEFAULT_CONCURRENCY × chunk` (16 MiB by default).
 */
export const DEFAULT_CONCURRENCY = 8;

/** Holes in the source up to this size are read with the data around them (one read, not two). */
const HOLE_READ_GAP = 256 << 10;

/** What a copy did. */
export interface CopySummary {
  /** Logical size of the output. */
  readonly bytes: number;
  /** Bytes actually written (the rest are holes). */
  readonly dataBytes: number;
  /** Bytes of the source read (holes, unallocated and unwanted ranges are skipped). */
  readonly readBytes: number;
  readonly seconds: number;
}

/** Options shared by every copy. */
export interface CopyOptions {
  /** Replace an existing output. */
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressCallback;
  /** Read size (tests pass odd sizes or a cycling pattern to prove the result does not depend on it). */
  readonly chunkSize?: number | readonly number[];
  /** Reads in flight (default {@link DEFAULT_CONCURRENCY}). */
  readonly concurrency?: number;
  /**
   * O_DIRECT reads where the source filesystem allows them: a raw source uses them unless this is
   * false; a qcow2's data runs only when this is true (default: through the page cache;
   * src/disk/qcow2/chunk-source.ts says why).
   */
  readonly direct?: boolean;
}

/** A copy of `[offset, offset + length)` of a source into a fresh output handle. */
export interface CopyJob {
  readonly source: DiskSource;
  readonly offset: number;
  readonly length: number;
  /**
   * Parts of the range (relative to `offset`) to read; everything else is written as a hole.
   * Default: the whole range. Either way, what the source's allocation says holds no data
   * (holes, zero or unallocated clusters) is not read.
   */
  readonly readExtents?: readonly Extent[];
  /** Final size of the output (default `length`; larger leaves a hole at the end). */
  readonly outputSize?: number;
}


/** Splits the extents into reads following the (cycling) chunk-size pattern. */
function planReads(extents: readonly Extent[], chunkSizes: readonly number[]): Extent[] {
  const reads: Extent[] = [];
  let index = 0;
  for (const extent of extents) {
    for (let pos = extent.start, end = extent.start + extent.length; pos < end; ) {
      const length = Math.min(chunkSizes[index++ % chunkSizes.length]!, end - pos);
      reads.push({ start: pos, length });
      pos += length;
    }
  }
  return reads;
}

/**
 * The copy loop: the source's data extents (SEEK_DATA/SEEK_HOLE on a raw file, the cluster map
 * of a qcow2) within the wanted ranges, read as several large positional reads in flight
 * (O_DIRECT where allowed), a memcmp zero test per 4 KiB block, one write per run of data blocks, holes for the rest and an ftruncate to
 * the exact size at the end. Each lane reads, tests and writes its own chunk, so reads overlap
 * the writes. Measured and dropped: a background fdatasync every 256 MiB (copy 2× slower: it
 * stalls the writers), O_DIRECT writes (less CPU, but slower wall time here), buffered reads of
 * the allocated ext blocks (no faster with writes in the pipeline, twice the system CPU, and
 * 2–3× slower when the kernel is short of memory: buffered reads of holes fill the page cache)
 * a worker thread verifying the free blocks (slower), and sync_file_range write-behind every
 * 64 MiB (extract of the seed: the fsync's time moved into the copy, same total).
 */
export async function copyToHandle(job: CopyJob, handle: FileHandle, options: CopyOptions = {}): Promise<{ dataBytes: number; readBytes: number }> {
  const { source, offset, length } = job;
  const chunkSizes = typeof options.chunkSize === 'number' ? [options.chunkSize] : options.chunkSize ?? [DEFAULT_CHUNK_BYTES];
  if (chunkSizes.length === 0 || chunkSizes.some((c) => !Number.isSafeInteger(c) || c < 1 || c > source.maxRead)) {
    throw new InvalidArgumentError(`Expected \`chunkSize\` to be whole numbers from 1 to ${source.maxRead}, got \`${String(options.chunkSize)}\``);
  }
  const concurrency = Math.min(concurrencyOf(options), source.lanes);
  const wanted = job.readExtents ? clipExtents(job.readExtents, length) : [{ start: 0, length }];
  // Small holes between data are read rather than split into small reads; the zero test keeps
  // them holes. The wanted ranges are never widened (free ext blocks stay unread).
  const extents = intersectExtents(wanted, coalesceExtents(source.dataExtents(offset, length), HOLE_READ_GAP));
  const reads = planReads(extents, chunkSizes);
  const fd = handle.fd;
  const started = performance.now();
  // The first completed read reports at once, then at most every PROGRESS_INTERVAL_MS.
  let lastReport = -Infinity;
  let dataBytes = 0;
  let doneBytes = 0;
  let failure: unknown;
  let next = 0;
  const report = (done: number): void => {
    const elapsed = (performance.now() - started) / 1000;
    options.onProgress?.({ bytes: done, total: length, speed: elapsed > 0 ? done / elapsed : 0 });
  };
  // Progress counts skipped (not read) stretches as done when the read after them completes.
  const skippedBefore = new Array<number>(reads.length);
  {
    let covered = 0;
    reads.forEach((r, i) => {
      skippedBefore[i] = r.start - covered;
      covered = r.start + r.length;
    });
  }
  throwIfAborted(options.signal);

  const lane = async (buffer: number): Promise<void> => {
    while (failure === undefined && next < reads.length) {
      if (options.signal?.aborted) {
        failure ??= new AbortedError('operation aborted', { cause: options.signal.reason });
        return;
      }
      const index = next++;
      const read = reads[index]!;
      const bytes = await source.read(buffer, offset + read.start, read.length);
      if (bytes.length < read.length) {
        throw new DiskwrightError('E_TRUNCATED', `image ends at byte ${source.size}, before the end of the range at ${offset + length}`, {
          offset: offset + read.start + bytes.length,
          expected: offset + length,
          actual: source.size,
          hint: 'the image is truncated or the partition table points past its end',
        });
      }
      for (const run of dataRuns(bytes, read.length, HOLE_BLOCK, read.start)) {
        writeFully(fd, bytes, run.start, run.length, read.start + run.start);
        dataBytes += run.length;
      }
      doneBytes += skippedBefore[index]! + read.length;
      const now = performance.now();
      if (now - lastReport >= PROGRESS_INTERVAL_MS) {
        lastReport = now;
        report(doneBytes);
      }
    }
  };
  const lanes = Array.from({ length: Math.min(concurrency, Math.max(1, reads.length)) }, (_, i) =>
    lane(i).catch((error: unknown) => {
      failure ??= error;
    }),
  );
  await Promise.all(lanes);
  if (failure !== undefined) throw failure;
  await handle.truncate(job.outputSize ?? length);
  throwIfAborted(options.signal);
  report(length);
  return { dataBytes, readBytes: reads.reduce((sum, r) => sum + r.length, 0) };
}

/** Progress callbacks at most this often. */
const PROGRESS_INTERVAL_MS = 50;

/**
 * Synchronous on purpose: a write into the page cache is a memcpy that rarely blocks, and keeping
 * it off libuv's 4-thread pool leaves those threads to the reads (measured: copy phase 1.6 s
 * instead of 2.7 s on the seed).
 */
function writeFully(fd: number, bytes: Uint8Array, start: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    try {
      done += writeSync(fd, bytes, start + done, length - done, position + done);
    } catch (error) {
      throw new DiskwrightError('E_IO', `write failed at offset ${position + done}: ${(error as Error).message}`, {
        offset: position + done,
        hint: (error as NodeJS.ErrnoException).code === 'ENOSPC' ? 'free some space on the output filesystem' : undefined,
        cause: error,
      });
    }
  }
}

function maxChunk(options: CopyOptions): number {
  const sizes = typeof options.chunkSize === 'number' ? [options.chunkSize] : options.chunkSize ?? [DEFAULT_CHUNK_BYTES];
  return Math.max(1, ...sizes.filter((c) => Number.isSafeInteger(c) && c > 0));
}

function concurrencyOf(options: CopyOptions): number {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new InvalidArgumentError(`Expected \`concurrency\` to be from 1 to 64, got \`${concurrency}\``);
  }
  return concurrency;
}

/** `disk` as a copy source sized for the given options (a lane per read in flight); the caller closes both. */
export function openSource(disk: Disk, options: CopyOptions = {}): DiskSource {
  return DiskSource.open(disk, maxChunk(options), { lanes: concurrencyOf(options), direct: options.direct });
}

/** Where {@link copyJobToFile} writes, and what it records on the output. */
export interface CopyOutput {
  readonly path: string;
  /** Record `user.diskwright.format` on the output before its rename (docs/qcow2.md). */
  readonly format?: 'raw';
}

/** Runs `job` over `disk` into `out` atomically (temp beside it, fsync, rename). */
export async function copyJobToFile(out: string | CopyOutput, makeJob: (source: DiskSource) => CopyJob | Promise<CopyJob>, disk: Disk, options: CopyOptions): Promise<CopySummary> {
  const { path: outPath, format } = typeof out === 'string' ? { path: out, format: undefined } : out;
  const started = performance.now();
  const source = openSource(disk, options);
  try {
    const job = await makeJob(source);
    const { dataBytes, readBytes } = await withAtomicOutput(
      outPath,
      async (handle, temp) => {
        const copied = await copyToHandle(job, handle, options);
        if (format) recordFormat(temp, format);
        return copied;
      },
      { overwrite: options.overwrite, signal: options.signal },
    );
    return { bytes: job.outputSize ?? job.length, dataBytes, readBytes, seconds: (performance.now() - started) / 1000 };
  } finally {
    source.close();
  }
}

/** Opens `path` as a raw file (its bytes as they are, whatever they hold) for `fn`, then closes it. */
async function withRawFile<T>(path: string, fn: (disk: Disk) => Promise<T>): Promise<T> {
  const disk = RawFileDisk.open(path, { readOnly: true });
  try {
    return await fn(disk);
  } finally {
    disk.close();
  }
}

/** Options of {@link copyRange}. */
export interface CopyRangeOptions extends CopyOptions {
  /** First byte of the range in the source. */
  readonly offset: number;
  /** Bytes to copy. */
  readonly length: number;
}

/**
 * Copies `[offset, offset + length)` of `srcPath` into a new sparse file `dstPath` (atomic):
 * byte-identical to `dd iflag=skip_bytes,count_bytes skip=offset count=length`, zero blocks as holes.
 */
export async function copyRange(srcPath: string, dstPath: string, options: CopyRangeOptions): Promise<CopySummary> {
  const { offset, length } = options;
  for (const [name, value] of [['offset', offset], ['length', length]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(`Expected \`${name}\` to be a non-negative whole number, got \`${value}\``);
  }
  return withRawFile(srcPath, (disk) =>
    copyJobToFile(dstPath, (source) => {
      assertInside(source, srcPath, offset, length);
      return { source, offset, length };
    }, disk, options),
  );
}

/** Options of {@link sparseCopyFile}. */
export interface SparseCopyOptions extends CopyOptions {
  /** Size of the copy: larger grows it (hole at the end), smaller cuts it. Default: the source size. */
  readonly size?: number;
}

/** Copies a whole file into a new sparse file (atomic), optionally resized in the same pass. */
export async function sparseCopyFile(srcPath: string, dstPath: string, options: SparseCopyOptions = {}): Promise<CopySummary> {
  if (options.size !== undefined && (!Number.isSafeInteger(options.size) || options.size < 0)) {
    throw new InvalidArgumentError(`Expected \`size\` to be a non-negative whole number of bytes, got \`${options.size}\``);
  }
  return withRawFile(srcPath, (disk) =>
    copyJobToFile(dstPath, (source) => {
      const size = options.size ?? source.size;
      return { source, offset: 0, length: Math.min(size, source.size), outputSize: size };
    }, disk, options),
  );
}

/** Throws E_TRUNCATED when the range runs past the end of the source. */
export function assertInside(source: { readonly size: number }, path: string, offset: number, length: number): void {
  if (offset + length > source.size) {
    throw new DiskwrightError('E_TRUNCATED', `${path} is ${source.size} bytes, too short for the range ${offset}..${offset + length}`, {
      path,
      offset: source.size,
      expected: offset + length,
      actual: source.size,
      hint: 'the image is truncated: copy it again or check its size',
    });
  }
}
