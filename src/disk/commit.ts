import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from '../bytes/index.js';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import { tempPathBeside } from '../io/atomic.js';
import { testFaultPoint, testFaultsActive } from '../io/test-fault.js';
import { errnoOf, hostError } from './host-error.js';
import { OVERLAY_BLOCK, type ChangeRun, type Overlay } from './overlay.js';
import { openQcow2Chain } from './qcow2/chain.js';
import { RawFileDisk } from './raw.js';
import type { Disk } from './types.js';

/**
 * The one commit mechanism for in-place changes (fs writes, template steps, resize, fsck --fix,
 * tune): an {@link Overlay} holds the session's changed blocks; the commit
 *  1. saves the image's current bytes of exactly those blocks in a record beside the image
 *     (`IMAGE.diskwright-undo`; all-zero blocks are recorded as holes without data, blocks the
 *     caller proves unused are skipped), fsyncs it and renames it into place (it exists only
 *     complete);
 *  2. grows the file if the overlay grew, writes the new blocks (zero runs are punched), fsyncs;
 *  3. removes the record.
 * Cost grows with the blocks changed, never with the space the image uses. A failure in step 2
 * (ENOSPC, EIO) is rolled back in-process before the error is thrown; a crash leaves the record,
 * which the next writer rolls back ({@link rollBackInterruptedCommit}) and every reader refuses.
 * Rollback first frees (truncates the grown tail, punches what were holes), then writes saved data
 * only where the bytes differ from the record: it never needs more space than the commit took,
 * and never writes into a range the commit did not reach.
 *
 * Record format (little-endian; unchanged from the first undo log, so old records still roll back):
 * header `DWUNDO01` (a raw image: offsets are file offsets) or `DWUNDOQ1` (a qcow2: offsets are
 * guest offsets of its virtual disk, rolled back through the qcow2 driver with its backing chain),
 * u64 original (virtual) size, u32 entry count, u32 CRC-32 of the first 20 bytes;
 * then per entry u64 image offset, u32 length, u32 flags (1 = was zeros, no data), u32 CRC-32 of
 * the data, u32 0, and `length` data bytes unless flag 1.
 */

export const RECORD_SUFFIX = '.diskwright-undo';
const MAGIC = Buffer.from('DWUNDO01', 'latin1');
/** A record of a qcow2 image's guest-visible bytes (its format must never be re-probed). */
const MAGIC_QCOW2 = Buffer.from('DWUNDOQ1', 'latin1');
const HEADER_SIZE = 24;
const ENTRY_HEADER_SIZE = 24;
const FLAG_ZERO = 1;
/** Entries a valid record may hold (named limit on untrusted input). */
const MAX_ENTRIES = 1 << 26;
/** Longest entry a valid record may hold (the writer's runs are at most 4 MiB). */
const MAX_ENTRY_BYTES = 64 * 1024 * 1024;
const ZERO_BLOCK = Buffer.alloc(OVERLAY_BLOCK);

/** Path of the commit record of `image` (its real path). */
export function recordPath(image: string): string {
  return `${image}${RECORD_SUFFIX}`;
}

/** True when an interrupted commit left its record beside `image`. */
export function hasPendingRecord(image: string): boolean {
  return existsSync(recordPath(image));
}

/** fsyncs the directory holding `path` (makes a rename or unlink durable). */
export function fsyncDirOf(path: string): void {
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

/** Where a commit is; tests throw from {@link CommitOptions.onStep} to simulate a failure there. */
export type CommitStep =
  | { readonly phase: 'record'; readonly position: number }
  | { readonly phase: 'record-written' }
  | { readonly phase: 'record-synced' }
  | { readonly phase: 'record-durable' }
  | { readonly phase: 'grow'; readonly size: number }
  | { readonly phase: 'write'; readonly position: number; readonly length: number }
  | { readonly phase: 'written' }
  | { readonly phase: 'flushed' };

export interface CommitOptions {
  readonly signal?: AbortSignal;
  /**
   * True for image ranges whose old bytes need no saving (ext blocks that were free before the
   * session: rolling back the bitmaps frees them again). Called per 4 KiB block.
   */
  readonly needsNoSave?: (position: number, length: number) => boolean;
  /** Test hook, called before each step. */
  readonly onStep?: (step: CommitStep) => void;
  /**
   * False for private temp images nobody else can see (instance pipeline): no record, no fsync.
   * Default true.
   */
  readonly durable?: boolean;
}

export interface CommitSummary {
  /** Bytes of new data written (zero runs punched are not counted). */
  readonly bytes: number;
  /** Bytes of old data saved in the record (holes and skipped blocks store none). */
  readonly undoBytes: number;
  /** 4 KiB blocks changed. */
  readonly blocks: number;
  /** The file's size afterwards. */
  readonly size: number;
}

/** Sequential buffered writer of the record file. */
class RecordWriter {
  private readonly buffer = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  position = HEADER_SIZE;
  constructor(
    private readonly fd: number,
    private readonly path: string,
  ) {}
  append(bytes: Uint8Array): void {
    if (bytes.length > this.buffer.length - this.used) this.drain();
    if (bytes.length > this.buffer.length) {
      this.writeAt(bytes, this.position);
      this.position += bytes.length;
      return;
    }
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
  }
  drain(): void {
    if (this.used === 0) return;
    this.writeAt(this.buffer.subarray(0, this.used), this.position);
    this.position += this.used;
    this.used = 0;
  }
  writeAt(bytes: Uint8Array, at: number): void {
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done, at + done);
    } catch (error) {
      throw hostError(error, this.path, 'write commit record', at);
    }
  }
}

function isZero(bytes: Uint8Array): boolean {
  for (let at = 0; at < bytes.length; at += OVERLAY_BLOCK) {
    const piece = bytes.subarray(at, Math.min(at + OVERLAY_BLOCK, bytes.length));
    if (!Buffer.from(piece.buffer, piece.byteOffset, piece.length).equals(ZERO_BLOCK.subarray(0, piece.length))) return false;
  }
  return true;
}

/**
 * Writes the record of the old contents of `runs` (clipped to `oldSize`) beside `image`:
 * complete, fsynced and renamed into place. Returns the bytes of data saved.
 */
function* writeRecord(base: Disk, image: string, runs: readonly ChangeRun[], oldSize: number, options: CommitOptions): CommitWork<number> {
  const final = recordPath(image);
  const temp = tempPathBeside(final);
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o600);
  } catch (error) {
    throw hostError(error, temp, 'create commit record');
  }
  let saved = 0;
  try {
    const writer = new RecordWriter(fd, temp);
    const entry = Buffer.alloc(ENTRY_HEADER_SIZE);
    let entries = 0;
    const emit = (position: number, piece: Buffer, zero: boolean): void => {
      entry.writeBigUInt64LE(BigInt(position), 0);
      entry.writeUInt32LE(piece.length, 8);
      entry.writeUInt32LE(zero ? FLAG_ZERO : 0, 12);
      entry.writeUInt32LE(zero ? 0 : crc32(piece), 16);
      entry.writeUInt32LE(0, 20);
      writer.append(entry);
      if (!zero) {
        writer.append(piece);
        saved += piece.length;
      }
      entries += 1;
    };
    /** The old bytes of [position, +length) as entries: pieces of whole blocks, zero (a hole entry) or data. */
    const saveOld = (position: number, length: number): void => {
      const old = Buffer.allocUnsafe(length);
      base.read(old, position);
      const zeroAt = (at: number): boolean => isZero(old.subarray(at, Math.min(at + OVERLAY_BLOCK, old.length)));
      let start = 0;
      while (start < old.length) {
        const zero = zeroAt(start);
        let stop = Math.min(start + OVERLAY_BLOCK, old.length);
        while (stop < old.length && zeroAt(stop) === zero) stop = Math.min(stop + OVERLAY_BLOCK, old.length);
        emit(position + start, old.subarray(start, stop), zero);
        start = stop;
      }
    };
    for (const run of runs) {
      yield;
      throwIfAborted(options.signal);
      const end = Math.min(run.position + run.length, oldSize);
      if (run.position >= end) continue;
      options.onStep?.({ phase: 'record', position: run.position });
      // Blocks the caller proves unused are neither saved nor read (a large file written into free
      // space would otherwise read all of its blocks' old bytes here).
      const length = end - run.position;
      const skipAt = (at: number): boolean => options.needsNoSave?.(run.position + at, Math.min(OVERLAY_BLOCK, length - at)) === true;
      let start = 0;
      while (start < length) {
        const skip = skipAt(start);
        let stop = Math.min(start + OVERLAY_BLOCK, length);
        while (stop < length && skipAt(stop) === skip) stop = Math.min(stop + OVERLAY_BLOCK, length);
        if (!skip) saveOld(run.position + start, stop - start);
        start = stop;
      }
    }
    writer.drain();
    const header = Buffer.alloc(HEADER_SIZE);
    (base.format === 'qcow2' ? MAGIC_QCOW2 : MAGIC).copy(header, 0);
    header.writeBigUInt64LE(BigInt(oldSize), 8);
    header.writeUInt32LE(entries, 16);
    header.writeUInt32LE(crc32(header.subarray(0, 20)), 20);
    writer.writeAt(header, 0);
    options.onStep?.({ phase: 'record-written' });
    try {
      fsyncSync(fd);
    } catch (error) {
      throw hostError(error, temp, 'fsync commit record');
    }
    closeSync(fd);
    fd = -1;
    options.onStep?.({ phase: 'record-synced' });
    renameSync(temp, final);
  } catch (error) {
    if (fd >= 0) closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirOf(final);
  return saved;
}

/**
 * Makes `overlay`'s changes durable in its base (a writable Disk whose `path` is the image's real
 * path), all or nothing: see the module comment. The overlay is cleared on success. On failure
 * the base is rolled back before the error is thrown (when even that fails, the record stays and
 * the error says so). Synchronous: `signal` is only seen if it fired before the call; a command
 * that must answer Ctrl-C during a long commit uses {@link commitOverlayInterruptibly}.
 */
export function commitOverlay(overlay: Overlay, commitOptions: CommitOptions = {}): CommitSummary {
  const work = commitWork(overlay, commitOptions);
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/** The commit gives the event loop a turn (where Ctrl-C is delivered) after this much work. */
const COMMIT_TURN_MS = 50;

/**
 * {@link commitOverlay} for a command that answers Ctrl-C: the same steps, giving the event loop a
 * turn every {@link COMMIT_TURN_MS} ms between runs (each at most 4 MiB), so `signal` fires
 * mid-commit. Interrupted while collecting the changes or writing the record, it stops with the
 * image untouched; while writing the image, it rolls back what it wrote (the record holds only
 * the old bytes of blocks that were in use, so the rollback costs far less than the writes) —
 * old image either way, then `E_ABORTED`. Only the final fdatasync, once every run is written,
 * cannot be stopped: an interrupt during it is seen after the commit completed.
 */
export async function commitOverlayInterruptibly(overlay: Overlay, commitOptions: CommitOptions = {}): Promise<CommitSummary> {
  const work = commitWork(overlay, commitOptions);
  let turn = performance.now();
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    if (performance.now() - turn < COMMIT_TURN_MS) continue;
    await new Promise<void>((resolve) => setImmediate(resolve));
    turn = performance.now();
  }
}

/** A commit as resumable work: it yields between runs, where an interrupt may stop it. */
type CommitWork<T> = Generator<void, T, void>;

function* commitWork(overlay: Overlay, commitOptions: CommitOptions): CommitWork<CommitSummary> {
  const options = withTestFault(commitOptions);
  const base = overlay.base;
  const image = base.path;
  const oldSize = base.size;
  const newSize = overlay.size;
  if (newSize < oldSize) throw new DiskwrightError('E_INVALID_ARGUMENT', `${image}: a commit cannot shrink the image`, { path: image });
  const runs: ChangeRun[] = [];
  // Collecting reads the spilled blocks back (seconds for a large tree): a place to stop, too.
  for (const run of overlay.changes()) {
    runs.push(run);
    yield;
    throwIfAborted(options.signal);
  }
  const blocks = overlay.changedBlocks;
  if (runs.length === 0 && newSize === oldSize) return { bytes: 0, undoBytes: 0, blocks: 0, size: oldSize };
  throwIfAborted(options.signal);
  const durable = options.durable !== false;
  const undoBytes = durable ? yield* writeRecord(base, image, runs, oldSize, options) : 0;
  // From here the record exists: a crash is rolled back by the next writer, a failure right here.
  let reached = 0;
  let bytes = 0;
  try {
    if (durable) options.onStep?.({ phase: 'record-durable' });
    if (newSize > oldSize) {
      options.onStep?.({ phase: 'grow', size: newSize });
      base.resize!(newSize);
    }
    for (const run of runs) {
      yield;
      // Interrupted: the catch below rolls back the runs written so far.
      throwIfAborted(options.signal);
      options.onStep?.({ phase: 'write', position: run.position, length: run.length });
      reached = run.position + run.length;
      if (run.zero) {
        base.discard(run.position, run.length);
        continue;
      }
      let at = run.position;
      for (const chunk of run.chunks) {
        // An all-zero block becomes a hole: it costs no space (and rolls back for free).
        if (isZero(chunk)) base.discard(at, chunk.length);
        else {
          base.write(chunk, at);
          bytes += chunk.length;
        }
        at += chunk.length;
      }
    }
    options.onStep?.({ phase: 'written' });
    if (durable) base.flush();
    // Data durable, record still there: a crash here still rolls back (to the old image).
    options.onStep?.({ phase: 'flushed' });
  } catch (error) {
    if (!durable) throw error;
    try {
      applyRecord(base, image, reached);
    } catch (rollbackError) {
      throw new DiskwrightError('E_IO', `${image}: the commit failed (${oneLine(error)}) and rolling it back failed too (${oneLine(rollbackError)})`, {
        path: image,
        cause: error,
        hint: `free some space, then run \`diskwright recover ${image}\` (the record ${recordPath(image)} is kept)`,
      });
    }
    const errno = errnoOf(error);
    throw new DiskwrightError(error instanceof DiskwrightError ? error.code : 'E_IO', `${image}: ${oneLine(error)}; nothing was changed (the commit was rolled back)`, {
      path: image,
      cause: error,
      hint: errno === 'ENOSPC' ? 'free some space on the filesystem holding the image and run the command again' : undefined,
    });
  }
  if (durable) {
    rmSync(recordPath(image), { force: true });
    fsyncDirOf(image);
  }
  overlay.clear();
  return { bytes, undoBytes, blocks, size: newSize };
}

/**
 * Crash and disk-full tests of whole commands: every commit step is a fault point of
 * src/io/test-fault.ts (`DISKWRIGHT_TEST_FAULT=N:kill|enospc`, `DISKWRIGHT_TEST_FAULT_LOG`).
 */
function withTestFault(options: CommitOptions): CommitOptions {
  if (!testFaultsActive()) return options;
  return {
    ...options,
    onStep: (step) => {
      options.onStep?.(step);
      testFaultPoint(step.phase);
    },
  };
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/** Opens the record beside `image` for reading; a failure names the record. */
function openRecord(image: string): { fd: number; path: string } {
  const path = recordPath(image);
  try {
    return { fd: openSync(path, 'r'), path };
  } catch (error) {
    throw hostError(error, path, 'open commit record');
  }
}

/** True when the record beside `image` saved a qcow2's guest-visible bytes. */
function recordIsQcow2(image: string): boolean {
  const { fd } = openRecord(image);
  try {
    const magic = Buffer.alloc(MAGIC_QCOW2.length);
    return readExactly(fd, magic, 0) && magic.equals(MAGIC_QCOW2);
  } finally {
    closeSync(fd);
  }
}

function damaged(path: string, why: string): DiskwrightError {
  return new DiskwrightError('E_IO', `commit record ${path} is damaged (${why}); the image may hold a half-applied commit`, {
    path,
    hint: 'check the image with `diskwright fsck IMAGE`; delete the .diskwright-undo file only if it is clean',
  });
}

function readExactly(fd: number, buffer: Buffer, position: number): boolean {
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

interface RecordEntry {
  readonly position: number;
  readonly length: number;
  /** Offset of the data in the record; undefined for a zero entry. */
  readonly dataAt: number | undefined;
}

/** Validates the whole record (header and every checksum) before anything is written. */
function readRecord(fd: number, path: string): { originalSize: number; entries: RecordEntry[] } {
  const header = Buffer.alloc(HEADER_SIZE);
  if (!readExactly(fd, header, 0) || !(header.subarray(0, 8).equals(MAGIC) || header.subarray(0, 8).equals(MAGIC_QCOW2))) throw damaged(path, 'bad header');
  if (header.readUInt32LE(20) !== crc32(header.subarray(0, 20))) throw damaged(path, 'header checksum mismatch');
  const originalSize = Number(header.readBigUInt64LE(8));
  const count = header.readUInt32LE(16);
  if (count > MAX_ENTRIES) throw damaged(path, `${count} entries exceed the limit of ${MAX_ENTRIES}`);
  const entries: RecordEntry[] = [];
  const entry = Buffer.alloc(ENTRY_HEADER_SIZE);
  let at = HEADER_SIZE;
  for (let i = 0; i < count; i += 1) {
    if (!readExactly(fd, entry, at)) throw damaged(path, 'truncated entry');
    const position = Number(entry.readBigUInt64LE(0));
    const length = entry.readUInt32LE(8);
    const flags = entry.readUInt32LE(12);
    const crc = entry.readUInt32LE(16);
    at += ENTRY_HEADER_SIZE;
    if (length > MAX_ENTRY_BYTES || !Number.isSafeInteger(position + length)) throw damaged(path, `entry ${i} is out of bounds`);
    if (flags & FLAG_ZERO) {
      entries.push({ position, length, dataAt: undefined });
      continue;
    }
    const data = Buffer.allocUnsafe(length);
    if (!readExactly(fd, data, at)) throw damaged(path, 'truncated data');
    if (crc32(data) !== crc) throw damaged(path, `data checksum mismatch at image offset ${position}`);
    entries.push({ position, length, dataAt: at });
    at += length;
  }
  return { originalSize, entries };
}

/**
 * Restores `disk` from the record beside `image`, for entries starting before `limit`: writes only
 * where the current bytes differ (a hole entry whose range still reads as zeros is skipped; one
 * that does not is punched), truncates to the original size, fsyncs, removes the record.
 */
function applyRecord(disk: Disk, image: string, limit = Number.POSITIVE_INFINITY): void {
  const { fd, path } = openRecord(image);
  try {
    const { originalSize, entries } = readRecord(fd, path);
    // Free space first (truncate the grown tail, punch what were holes), then restore data: the
    // data blocks the commit punched are refilled from the space the commit had taken.
    if (disk.size > originalSize) disk.resize!(originalSize);
    const reached = entries.filter((e) => e.position < limit && e.position < disk.size);
    for (const entry of reached) {
      // Punched even when it reads as zeros: the commit may have written zeros into the hole.
      if (entry.dataAt === undefined) disk.discard(entry.position, Math.min(entry.length, disk.size - entry.position));
    }
    for (const entry of reached) {
      if (entry.dataAt === undefined) continue;
      const length = Math.min(entry.length, disk.size - entry.position);
      const current = Buffer.allocUnsafe(length);
      disk.read(current, entry.position);
      const saved = Buffer.allocUnsafe(entry.length);
      readExactly(fd, saved, entry.dataAt);
      if (!current.equals(saved.subarray(0, length))) disk.write(saved.subarray(0, length), entry.position);
    }
    disk.flush();
  } finally {
    closeSync(fd);
  }
  rmSync(path, { force: true });
  fsyncDirOf(path);
}

/**
 * Rolls back the commit that an interrupted run left on `image` (its real path; the caller holds
 * the write lock). Returns false when there was none. Safe to call at any time.
 */
export function rollBackInterruptedCommit(image: string): boolean {
  if (!hasPendingRecord(image)) return false;
  // The record says which view it saved: a qcow2's guest bytes, or the raw file's.
  const disk = recordIsQcow2(image) ? openQcow2Chain(image, { readOnly: false }) : RawFileDisk.open(image, { readOnly: false });
  try {
    applyRecord(disk, image);
  } finally {
    disk.close();
  }
  return true;
}
