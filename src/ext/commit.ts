import { closeSync, fstatSync, fsyncSync, openSync, readSync, writevSync } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from '../bytes/index.js';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import { withAtomicOutput } from '../io/index.js';
import { OVERLAY_CHUNK, type OverlayRun } from './overlay.js';

/**
 * Crash-safe commit of staged changes (an undo log, like e2fsprogs' `-z` undo files):
 *  1. for every range about to change, the image's current bytes are saved to `IMAGE.diskwright-undo`
 *     — except ranges whose blocks were free in the block bitmaps before the session (rolling back
 *     the metadata frees them again) — and all-zero 4 KiB pieces are recorded as "zero" without data;
 *     the log is written beside the image, fsynced and renamed into place (it exists only complete);
 *  2. the new bytes are written to the image and fsynced;
 *  3. the log is deleted.
 * A crash before 3 leaves the log; the next session on the image (or `recoverInterruptedCommit`)
 * writes the saved bytes back: every block that was in use (all metadata and all file data) is
 * byte-identical to before the interrupted commit, so the filesystem is exactly the old one; blocks
 * that were free may keep new bytes. (A session that fails before committing writes nothing at all.)
 */

export const UNDO_SUFFIX = '.diskwright-undo';
const UNDO_MAGIC = Buffer.from('DWUNDO01', 'latin1');
const HEADER_SIZE = 24;
const ENTRY_HEADER_SIZE = 24;
const FLAG_ZERO = 1;
/** Entries a valid undo log may hold (named limit on untrusted input). */
const MAX_UNDO_ENTRIES = 1 << 26;

const ZERO_CHUNK = Buffer.alloc(OVERLAY_CHUNK);

export function undoLogPath(image: string): string {
  return `${image}${UNDO_SUFFIX}`;
}

/** fsyncs the directory holding `path` (makes a rename or unlink durable). */
export function fsyncDir(path: string): void {
  try {
    const fd = openSync(dirname(path), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still ordered after the data.
  }
}

function readFully(fd: number, buffer: Buffer, position: number): number {
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  if (done < buffer.length) buffer.fill(0, done);
  return done;
}

/** Writes consecutive buffers at `position` (writev; retries short writes). */
function writeChunks(fd: number, chunks: readonly Buffer[], position: number): void {
  const pending = [...chunks];
  let at = position;
  while (pending.length > 0) {
    let n = writevSync(fd, pending, at);
    at += n;
    while (pending.length > 0 && n >= pending[0]!.length) {
      n -= pending[0]!.length;
      pending.shift();
    }
    if (n > 0 && pending.length > 0) pending[0] = pending[0]!.subarray(n);
  }
}

export interface CommitSummary {
  /** Bytes written to the image. */
  readonly bytes: number;
  /** Bytes of original data saved in the undo log (zero pieces are not stored). */
  readonly undoBytes: number;
}

/** Writes `runs()` (called twice: once to save the old bytes, once to write) into `image`, crash-safely. */
export async function commitRuns(
  image: string,
  runs: () => Iterable<OverlayRun>,
  options: {
    signal?: AbortSignal;
    /** Offset of the filesystem in the image (wasFree takes filesystem offsets). */
    base?: number;
    /** True when the filesystem range was free before the session (its old bytes need no saving). */
    wasFree?: (fsOffset: number, length: number) => boolean;
    /** Called once the undo log is durable, before the image is touched (tests inject crashes here). */
    onLogDurable?: () => void;
  } = {},
): Promise<CommitSummary> {
  const { signal, base = 0, wasFree, onLogDurable } = options;
  const log = undoLogPath(image);
  const fd = openSync(image, 'r+');
  try {
    const originalSize = fstatSync(fd).size;
    let entries = 0;
    let undoBytes = 0;
    let position = HEADER_SIZE;
    await withAtomicOutput(
      log,
      async (handle) => {
        const entryHeader = Buffer.alloc(ENTRY_HEADER_SIZE);
        for (const run of runs()) {
          throwIfAborted(signal);
          // Blocks that were free need no saved bytes: rolling back the bitmaps frees them again.
          const chunkFree = (at: number): boolean => wasFree !== undefined && wasFree(run.offset - base + at, Math.min(OVERLAY_CHUNK, run.length - at));
          let firstUsed = 0;
          while (firstUsed < run.length && chunkFree(firstUsed)) firstUsed += OVERLAY_CHUNK;
          if (firstUsed >= run.length) continue;
          const original = Buffer.allocUnsafe(run.length);
          readFully(fd, original, run.offset);
          // Split into pieces of whole chunks: free (skipped), zero (recorded), data (saved).
          const classify = (at: number): 'free' | 'zero' | 'data' => (chunkFree(at) ? 'free' : isZeroChunk(original, at) ? 'zero' : 'data');
          let start = 0;
          while (start < original.length) {
            const kind = classify(start);
            let end = Math.min(start + OVERLAY_CHUNK, original.length);
            while (end < original.length && classify(end) === kind) end = Math.min(end + OVERLAY_CHUNK, original.length);
            if (kind === 'free') {
              start = end;
              continue;
            }
            const zero = kind === 'zero';
            const piece = original.subarray(start, end);
            entryHeader.writeBigUInt64LE(BigInt(run.offset + start), 0);
            entryHeader.writeUInt32LE(piece.length, 8);
            entryHeader.writeUInt32LE(zero ? FLAG_ZERO : 0, 12);
            entryHeader.writeUInt32LE(zero ? 0 : crc32(piece), 16);
            entryHeader.writeUInt32LE(0, 20);
            await handle.write(entryHeader, 0, ENTRY_HEADER_SIZE, position);
            position += ENTRY_HEADER_SIZE;
            if (!zero) {
              await handle.write(piece, 0, piece.length, position);
              position += piece.length;
              undoBytes += piece.length;
            }
            entries += 1;
            start = end;
          }
        }
        const header = Buffer.alloc(HEADER_SIZE);
        UNDO_MAGIC.copy(header, 0);
        header.writeBigUInt64LE(BigInt(originalSize), 8);
        header.writeUInt32LE(entries, 16);
        header.writeUInt32LE(crc32(header.subarray(0, 20)), 20);
        await handle.write(header, 0, HEADER_SIZE, 0);
      },
      { overwrite: false },
    );
    fsyncDir(log);
    onLogDurable?.();
    // Point of no return: from here a crash is rolled back from the log by the next session.
    let bytes = 0;
    for (const run of runs()) {
      writeChunks(fd, run.chunks, run.offset);
      bytes += run.length;
    }
    fsyncSync(fd);
    await rm(log, { force: true });
    fsyncDir(log);
    return { bytes, undoBytes };
  } finally {
    closeSync(fd);
  }
}

function isZeroChunk(buffer: Buffer, start: number): boolean {
  const end = Math.min(start + OVERLAY_CHUNK, buffer.length);
  return buffer.subarray(start, end).equals(ZERO_CHUNK.subarray(0, end - start));
}

function corrupt(log: string, why: string): DiskwrightError {
  return new DiskwrightError('E_IO', `undo log ${log} is damaged (${why}); the image may hold a half-applied commit`, {
    path: log,
    hint: 'check the image with `diskwright fsck IMAGE`; delete the .diskwright-undo file only if it is clean',
  });
}

/**
 * Rolls back a commit that was interrupted (process killed, power loss) using the undo log beside
 * the image. Returns true when something was restored. Safe to call at any time.
 */
export async function recoverInterruptedCommit(image: string): Promise<boolean> {
  const log = undoLogPath(image);
  const exists = await stat(log).then(() => true, () => false);
  if (!exists) return false;
  const bytes = await readFile(log);
  if (bytes.length < HEADER_SIZE || !bytes.subarray(0, 8).equals(UNDO_MAGIC)) throw corrupt(log, 'bad header');
  if (bytes.readUInt32LE(20) !== crc32(bytes.subarray(0, 20))) throw corrupt(log, 'header checksum mismatch');
  const originalSize = Number(bytes.readBigUInt64LE(8));
  const entries = bytes.readUInt32LE(16);
  if (entries > MAX_UNDO_ENTRIES) throw corrupt(log, `${entries} entries exceed the limit`);
  // Validate everything before touching the image.
  const plan: { offset: number; length: number; data?: Buffer }[] = [];
  let position = HEADER_SIZE;
  for (let i = 0; i < entries; i += 1) {
    if (position + ENTRY_HEADER_SIZE > bytes.length) throw corrupt(log, 'truncated entry');
    const offset = Number(bytes.readBigUInt64LE(position));
    const length = bytes.readUInt32LE(position + 8);
    const flags = bytes.readUInt32LE(position + 12);
    const crc = bytes.readUInt32LE(position + 16);
    position += ENTRY_HEADER_SIZE;
    if (flags & FLAG_ZERO) {
      plan.push({ offset, length });
      continue;
    }
    if (position + length > bytes.length) throw corrupt(log, 'truncated data');
    const data = bytes.subarray(position, position + length);
    if (crc32(data) !== crc) throw corrupt(log, `data checksum mismatch at image offset ${offset}`);
    plan.push({ offset, length, data });
    position += length;
  }
  const handle = await open(image, 'r+');
  try {
    for (const entry of plan) {
      if (entry.data) {
        await handle.write(entry.data, 0, entry.length, entry.offset);
      } else {
        for (let done = 0; done < entry.length; done += ZERO_CHUNK.length) {
          const n = Math.min(ZERO_CHUNK.length, entry.length - done);
          await handle.write(ZERO_CHUNK, 0, n, entry.offset + done);
        }
      }
    }
    if ((await handle.stat()).size > originalSize) await handle.truncate(originalSize);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rm(log, { force: true });
  fsyncDir(log);
  return true;
}
