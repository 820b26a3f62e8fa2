import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import { readUsedBlockRanges } from '../extmeta/index.js';
import { dataRuns, sparseCopyFile, type ProgressCallback } from '../io/index.js';

/** Read size of the used-blocks copy. */
export const USED_COPY_CHUNK = 1 << 20;
/** Give the event loop (abort, progress) a turn at least this often. */
const YIELD_INTERVAL_MS = 50;

export interface UsedCopyOptions {
  /** Size of the output (≥ the source: the instance disk size). */
  readonly size: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressCallback;
}

/** Merges sorted byte ranges into [start, end) pairs clipped to `limit`. */
function mergeRanges(ranges: readonly { start: bigint; length: bigint }[], limit: number): [number, number][] {
  const out: [number, number][] = [];
  for (const range of ranges) {
    const start = Number(range.start);
    const end = Math.min(limit, Number(range.start + range.length));
    if (end <= start) continue;
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/**
 * Copies an ext2/3/4 image into a NEW file `dst` (created exclusively; the caller owns its removal)
 * reading only the blocks the filesystem has allocated (its block bitmaps, B's
 * `readUsedBlockRanges`) — on a template that is mostly free space this reads ~1/5 of the bytes a
 * whole-file copy reads. Free blocks become holes (stale bytes there are not copied, which also
 * keeps old template data out of instances); all-zero blocks inside used ranges stay holes too.
 * The result is then extended to `size`. Not fsynced: the pipeline fsyncs once before the rename.
 * Falls back to a whole-file sparse copy when the bitmaps cannot be read.
 */
export async function copyUsedBlocks(src: string, dst: string, options: UsedCopyOptions): Promise<{ bytes: number; dataBytes: number }> {
  let ranges: [number, number][];
  let inFd: number | undefined = openSync(src, 'r');
  let outFd: number | undefined;
  try {
    const srcSize = fstatSync(inFd).size;
    const fd = inFd;
    try {
      ranges = mergeRanges(await readUsedBlockRanges(src), srcSize);
    } catch (error) {
      if ((error as { code?: string }).code === 'E_ABORTED') throw error;
      closeSync(inFd);
      inFd = undefined;
      const summary = await sparseCopyFile(src, dst, { size: options.size, ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
      return { bytes: summary.bytes, dataBytes: summary.dataBytes };
    }
    const total = ranges.reduce((sum, [start, end]) => sum + (end - start), 0);
    outFd = openSync(dst, 'wx', 0o644);
    const buffer = Buffer.allocUnsafe(USED_COPY_CHUNK);
    const started = performance.now();
    let lastYield = started;
    let done = 0;
    let dataBytes = 0;
    throwIfAborted(options.signal);
    for (const [start, end] of ranges) {
      for (let pos = start; pos < end; ) {
        const want = Math.min(USED_COPY_CHUNK, end - pos);
        let got = 0;
        while (got < want) {
          const n = readSync(fd, buffer, got, want - got, pos + got);
          if (n === 0) throw new DiskwrightError('E_TRUNCATED', `${src} ended at ${pos + got} inside an allocated block range`, { path: src, offset: pos + got });
          got += n;
        }
        for (const run of dataRuns(buffer, want)) {
          let written = 0;
          while (written < run.length) written += writeSync(outFd, buffer, run.start + written, run.length - written, pos + run.start + written);
          dataBytes += run.length;
        }
        pos += want;
        done += want;
        const now = performance.now();
        if (now - lastYield >= YIELD_INTERVAL_MS) {
          lastYield = now;
          options.onProgress?.({ bytes: done, total, speed: done / ((now - started) / 1000) });
          await yieldToEventLoop();
          throwIfAborted(options.signal);
        }
      }
    }
    ftruncateSync(outFd, Math.max(options.size, srcSize));
    options.onProgress?.({ bytes: total, total });
    return { bytes: Math.max(options.size, srcSize), dataBytes };
  } catch (error) {
    if (error instanceof DiskwrightError) throw error;
    throw new DiskwrightError('E_IO', `copying ${src} failed: ${(error as Error).message}`, { path: src, cause: error });
  } finally {
    if (inFd !== undefined) closeSync(inFd);
    if (outFd !== undefined) closeSync(outFd);
  }
}
