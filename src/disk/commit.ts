import { closeSync, existsSync, fdatasyncSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { fsyncDirOf, fsyncDirOfAsync } from '../io/fsync-dir.js';
import { open as openHandle, type FileHandle } from 'node:fs/promises';
import { crc32 } from '../bytes/index.js';
import { DiskwrightError, reportAbort, throwIfAborted } from '../errors.js';
import { tempPathBeside } from '../io/atomic.js';
import { testFaultPoint, testFaultsActive } from '../io/test-fault.js';
import { lazyZlib } from '../lazy-node.js';
import { errnoOf, hostError } from './host-error.js';
import { OVERLAY_BLOCK, type ChangeRun, type Overlay } from './overlay.js';
import { openQcow2Chain } from './qcow2/chain.js';
import { Qcow2Disk } from './qcow2/image.js';
import { RawFileDisk } from './raw.js';
import type { AllocationExtent, Disk } from './types.js';

/**
 * The one commit mechanism for in-place changes (fs writes, template steps, resize, fsck --fix,
 * tune): an {@link Overlay} holds the session's changed blocks; the commit
 *  1. saves the image's current bytes of exactly those blocks in a record beside the image
 *     (`IMAGE.diskwright-undo`; all-zero blocks are recorded as holes without data, blocks the
 *     caller proves unused are skipped) and makes it durable (fsync of the record, then of its
 *     directory) before the first byte of the image changes;
 *  2. grows the file if the overlay grew, writes the new blocks (zero runs are punched), fsyncs;
 *  3. removes the record.
 * Cost grows with the blocks changed, never with the space the image uses. A failure in step 2
 * (ENOSPC, EIO) is rolled back in-process before the error is thrown; a crash leaves the record,
 * which the next writer rolls back ({@link rollBackInterruptedCommit}) and every reader refuses.
 * Rollback first frees (truncates the grown tail, punches what were holes), then writes saved data
 * only where the bytes differ from the record: it never needs more space than the commit took,
 * and never writes into a range the commit did not reach.
 *
 * Two syncs fewer than a rename-into-place record with a synced removal (raw images, record v2):
 *  - The record is created under its final name and synced there: on ext4 (and XFS, btrfs) the
 *    fsync of a new file commits its directory entry in the same journal commit, so the directory
 *    fsync that POSIX still asks for finds nothing left to commit. A kill before both syncs
 *    returned can leave a partial record — but then the image was never written (step 2 starts
 *    only after them): a v2 record that does not read back complete is dropped when every entry
 *    that does read back equals the image, and refused as damaged otherwise.
 *  - The removal in step 3 is not synced when the record can prove completion: it lists the CRC-32
 *    of every changed block's new bytes, and a leftover record whose blocks all hold their new
 *    bytes (and the image its new size) belongs to a commit that completed — it is dropped, not
 *    rolled back. Only the overlay's blocks are listed, so a session that also wrote file data
 *    in place (src/disk/free-writes.ts) passes `outsideWrites` and its removal stays synced.
 *    A leftover record whose blocks are neither all old nor all new (something else wrote the
 *    image after a crash) is refused, never rolled back over the newer bytes.
 *  Writes to an image outside a commit (in-place file data) must first make an earlier commit's
 *  removal durable ({@link settleCompletedCommit}): they may land in blocks that commit changed.
 *  - An `fs` session creates its record file ahead ({@link prepareRecord}: zeros, synced, while
 *    the session runs); the commit writes the record into those blocks and fdatasyncs it — an
 *    overwrite, so no journal commit on the commit's path. A record whose first bytes are zeros
 *    was never armed (the image was not written): it is not pending ({@link hasPendingRecord}).
 *    A crash while the record is being written there leaves a cut-short record: handled above.
 * qcow2 images keep the v1 record (renamed into place, removal synced): the driver's own metadata
 * (L2 tables, refcounts) is not in the block list. Instead, the driver keeps an undo point for
 * the commit ({@link Qcow2Disk.markUndoPoint}): an in-process rollback returns its metadata and
 * length to it first (no leaked clusters, the appended space returned), then applies the record.
 *
 * Record format (little-endian; v1 records of earlier versions still roll back):
 * header `DWUNDO01` (v1, a raw image: offsets are file offsets), `DWUNDO02` (v2, a raw image) or
 * `DWUNDOQ1` (v1, a qcow2: offsets are guest offsets of its virtual disk, rolled back through the
 * qcow2 driver with its backing chain), u64 original (virtual) size, u32 entry count, u32 CRC-32
 * of the first 20 bytes; then per entry u64 image offset, u32 length, u32 flags (1 = was zeros, no
 * data), u32 CRC-32 of the data, u32 0, and `length` data bytes unless flag 1. v2 then holds the
 * completion list: `DWDONE01`, u64 new size, u32 flags (1 = completion provable), u32 block
 * count, per block u64 offset, u32 length, u32 CRC-32 of its new bytes; and a u32 CRC-32 of the
 * list from its magic on.
 */

export const RECORD_SUFFIX = '.diskwright-undo';
const MAGIC = Buffer.from('DWUNDO01', 'latin1');
/** A record of a qcow2 image's guest-visible bytes (its format must never be re-probed). */
const MAGIC_QCOW2 = Buffer.from('DWUNDOQ1', 'latin1');
/** A raw image's record created under its final name, with the completion list. */
const MAGIC_V2 = Buffer.from('DWUNDO02', 'latin1');
const DONE_MAGIC = Buffer.from('DWDONE01', 'latin1');
const DONE_HEADER_SIZE = 24;
const DONE_ENTRY_SIZE = 16;
const DONE_COMPLETABLE = 1;
const HEADER_SIZE = 24;
const ENTRY_HEADER_SIZE = 24;
const FLAG_ZERO = 1;
/** Entries a valid record may hold (named limit on untrusted input). */
const MAX_ENTRIES = 1 << 26;
/** Longest entry a valid record may hold (the writer's runs are at most 4 MiB). */
const MAX_ENTRY_BYTES = 64 * 1024 * 1024;
const ZERO_BLOCK = Buffer.alloc(OVERLAY_BLOCK);
/** CRC-32 (IEEE) in native code where Node has it (20.15+): the completion list covers every changed byte. */
let pickedCrc32: ((bytes: Uint8Array) => number) | undefined;
const fastCrc32 = (bytes: Uint8Array): number => {
  if (!pickedCrc32) {
    const nativeCrc32 = lazyZlib().crc32;
    pickedCrc32 = typeof nativeCrc32 === 'function' ? (b) => nativeCrc32(b) : (b) => crc32(b);
  }
  return pickedCrc32(bytes);
};

/** Path of the commit record of `image` (its real path). */
export function recordPath(image: string): string {
  return `${image}${RECORD_SUFFIX}`;
}

/**
 * True when an interrupted commit left its record beside `image`. A record file whose first bytes
 * are zeros (or that is empty) was never armed — prepared ahead of a commit, or killed before its
 * header reached the disk — so the image was not written: readers may read it, the next writer
 * drops it ({@link rollBackInterruptedCommit}).
 */
export function hasPendingRecord(image: string): boolean {
  let fd: number;
  try {
    fd = openSync(recordPath(image), 'r');
  } catch (error) {
    return errnoOf(error) !== 'ENOENT';
  }
  try {
    const head = Buffer.alloc(MAGIC.length);
    const got = readSync(fd, head, 0, head.length, 0);
    return got > 0 && !head.subarray(0, got).equals(Buffer.alloc(got));
  } finally {
    closeSync(fd);
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
  /**
   * True when the session also wrote the image outside the overlay (file data in place): the
   * record cannot prove completion then, so its removal is synced. Default false.
   */
  readonly outsideWrites?: boolean;
  /**
   * A raw image's record file created ahead ({@link prepareRecord}, awaited `ready`): the record is
   * written into its preallocated blocks and fdatasynced — no new file, no directory entry on the
   * commit's path, so no journal commit for it there.
   */
  readonly prepared?: { readonly fd: number; readonly capacity: number };
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

/** How a record is written: v1 (temp file renamed into place) or v2 (created in place, with the completion list). */
interface RecordPlan {
  readonly v2: boolean;
  /** v2: the completion list proves a finished commit (no writes outside the overlay). */
  readonly completable: boolean;
  readonly newSize: number;
}

/** The completion list of a v2 record: every changed block's offset, length and new-bytes CRC. */
function completionList(runs: readonly ChangeRun[], plan: RecordPlan): Buffer {
  let blocks = 0;
  for (const run of runs) blocks += Math.ceil(run.length / OVERLAY_BLOCK);
  const list = Buffer.alloc(DONE_HEADER_SIZE + (plan.completable ? blocks : 0) * DONE_ENTRY_SIZE + 4);
  DONE_MAGIC.copy(list, 0);
  list.writeBigUInt64LE(BigInt(plan.newSize), 8);
  list.writeUInt32LE(plan.completable ? DONE_COMPLETABLE : 0, 16);
  let at = DONE_HEADER_SIZE;
  if (plan.completable) {
    const zeroCrc = fastCrc32(ZERO_BLOCK);
    for (const run of runs) {
      for (let k = 0; k * OVERLAY_BLOCK < run.length; k += 1) {
        const length = Math.min(OVERLAY_BLOCK, run.length - k * OVERLAY_BLOCK);
        list.writeBigUInt64LE(BigInt(run.position + k * OVERLAY_BLOCK), at);
        list.writeUInt32LE(length, at + 8);
        list.writeUInt32LE(run.zero ? (length === OVERLAY_BLOCK ? zeroCrc : fastCrc32(ZERO_BLOCK.subarray(0, length))) : fastCrc32(run.chunks[k]!), at + 12);
        at += DONE_ENTRY_SIZE;
      }
    }
    list.writeUInt32LE(blocks, 20);
  }
  list.writeUInt32LE(crc32(list.subarray(0, at)), at);
  return list;
}

/**
 * Writes the record of the old contents of `runs` (clipped to `oldSize`) beside `image` and makes
 * it durable: v1 complete in a temp file, fsynced and renamed into place; v2 created under its
 * final name, fsynced, its directory fsynced. Returns the bytes of data saved and the runs that
 * really change the image (blocks rewritten with their old bytes dropped).
 */
/**
 * Reads the old bytes at `position` into `old`, but only where `base` stores data: the ranges its
 * allocation() reports as 'zero' (a raw file's holes by SEEK_DATA/SEEK_HOLE, a qcow2's zero or
 * unallocated clusters without backing) are filled with zeros unread — they read as zeros by the
 * Disk contract, so the bytes are the same, and a commit into a mostly empty 4 GiB partition does
 * not read gigabytes of holes (mkfs -p: ~20 s before). Returns, per OVERLAY_BLOCK of `old`, whether
 * the whole block lay in such a range.
 */
function readOldBytes(base: Disk, old: Buffer, position: number): boolean[] {
  const known = new Array<boolean>(Math.ceil(old.length / OVERLAY_BLOCK)).fill(false);
  for (const extent of coalesceZero(base.allocation(position, old.length))) {
    const from = extent.position - position;
    const to = from + extent.length;
    if (extent.state !== 'zero') {
      base.read(old.subarray(from, to), extent.position);
      continue;
    }
    old.fill(0, from, to);
    for (let block = Math.ceil(from / OVERLAY_BLOCK); block * OVERLAY_BLOCK < to; block += 1) {
      if (Math.min((block + 1) * OVERLAY_BLOCK, old.length) <= to) known[block] = true;
    }
  }
  return known;
}

/** `extents` with neighbouring 'zero' extents joined (a block across their boundary is known too). */
function coalesceZero(extents: readonly AllocationExtent[]): AllocationExtent[] {
  const out: AllocationExtent[] = [];
  for (const extent of extents) {
    const last = out[out.length - 1];
    if (last && last.state === 'zero' && extent.state === 'zero' && last.position + last.length === extent.position) out[out.length - 1] = { ...last, length: last.length + extent.length };
    else out.push(extent);
  }
  return out;
}

function* writeRecord(base: Disk, image: string, runs: readonly ChangeRun[], oldSize: number, plan: RecordPlan, options: CommitOptions): CommitWork<{ saved: number; runs: ChangeRun[] }> {
  const final = recordPath(image);
  const target = plan.v2 ? final : tempPathBeside(final);
  const prepared = plan.v2 ? options.prepared : undefined;
  let fd: number;
  try {
    fd = prepared ? prepared.fd : openSync(target, 'wx', 0o600);
  } catch (error) {
    throw hostError(error, target, 'create commit record');
  }
  let saved = 0;
  const kept: ChangeRun[] = [];
  try {
    const writer = new RecordWriter(fd, target);
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
    /** The old bytes `old` at `position` as entries: pieces of whole blocks, zero (a hole entry) or data. */
    const saveOld = (position: number, old: Buffer): void => {
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
    /** Blocks [from, to) of `run` as a run of their own. */
    const keep = (run: ChangeRun, from: number, to: number): void => {
      const position = run.position + from * OVERLAY_BLOCK;
      kept.push({ position, length: Math.min(run.length, to * OVERLAY_BLOCK) - from * OVERLAY_BLOCK, zero: run.zero, chunks: run.zero ? [] : run.chunks.slice(from, to) });
    };
    for (const run of runs) {
      yield;
      throwIfAborted(options.signal);
      const end = Math.min(run.position + run.length, oldSize);
      if (run.position >= end) {
        kept.push(run);
        continue;
      }
      options.onStep?.({ phase: 'record', position: run.position });
      const blocks = Math.ceil(run.length / OVERLAY_BLOCK);
      const changed = new Array<boolean>(blocks).fill(true);
      // Blocks the caller proves unused are neither saved nor read (a large file written into free
      // space would otherwise read all of its blocks' old bytes here).
      const length = end - run.position;
      const skipAt = (at: number): boolean => options.needsNoSave?.(run.position + at, Math.min(OVERLAY_BLOCK, length - at)) === true;
      let start = 0;
      while (start < length) {
        const skip = skipAt(start);
        let stop = Math.min(start + OVERLAY_BLOCK, length);
        while (stop < length && skipAt(stop) === skip) stop = Math.min(stop + OVERLAY_BLOCK, length);
        if (!skip) {
          const old = Buffer.allocUnsafe(stop - start);
          const known = readOldBytes(base, old, run.position + start);
          const first = start / OVERLAY_BLOCK;
          // A block whose new bytes equal its old ones is no change (libext2fs rewrites every bitmap
          // and every descriptor copy on close): it is neither saved nor written. (Discarded ranges
          // stay: the commit punches them to free their space.)
          for (let at = 0; at < old.length && !run.zero; at += OVERLAY_BLOCK) {
            const now = old.subarray(at, Math.min(at + OVERLAY_BLOCK, old.length));
            const next = run.chunks[first + at / OVERLAY_BLOCK]!;
            if (next.length === now.length && next.equals(now)) changed[first + at / OVERLAY_BLOCK] = false;
          }
          // A discard over a block the base already stores as zeros (a hole) is no change either:
          // punching it frees nothing and it reads as zeros before and after (mke2fs zeroes a new
          // filesystem's inode tables and journal area, mostly holes of a fresh image).
          for (let at = 0; at < old.length && run.zero; at += OVERLAY_BLOCK) if (known[at / OVERLAY_BLOCK]) changed[first + at / OVERLAY_BLOCK] = false;
          for (let a = 0; a < old.length; ) {
            if (!changed[first + a / OVERLAY_BLOCK]) {
              a += OVERLAY_BLOCK;
              continue;
            }
            let b = a + OVERLAY_BLOCK;
            while (b < old.length && changed[first + b / OVERLAY_BLOCK]) b += OVERLAY_BLOCK;
            saveOld(run.position + start + a, old.subarray(a, Math.min(b, old.length)));
            a = b;
          }
        }
        start = stop;
      }
      for (let k = 0; k < blocks; ) {
        if (!changed[k]) {
          k += 1;
          continue;
        }
        let j = k + 1;
        while (j < blocks && changed[j]) j += 1;
        keep(run, k, j);
        k = j;
      }
    }
    if (plan.v2) writer.append(completionList(kept, plan));
    writer.drain();
    const header = Buffer.alloc(HEADER_SIZE);
    (base.format === 'qcow2' ? MAGIC_QCOW2 : plan.v2 ? MAGIC_V2 : MAGIC).copy(header, 0);
    header.writeBigUInt64LE(BigInt(oldSize), 8);
    header.writeUInt32LE(entries, 16);
    header.writeUInt32LE(crc32(header.subarray(0, 20)), 20);
    writer.writeAt(header, 0);
    options.onStep?.({ phase: 'record-written' });
    try {
      // Into a prepared file: its blocks and size are durable already (unless the record outgrew
      // them), so the data sync needs no journal commit.
      if (prepared) fdatasyncSync(fd);
      else fsyncSync(fd);
    } catch (error) {
      throw hostError(error, target, 'fsync commit record');
    }
    if (!prepared) closeSync(fd);
    fd = -1;
    options.onStep?.({ phase: 'record-synced' });
    if (!plan.v2) renameSync(target, final);
  } catch (error) {
    if (fd >= 0 && !prepared) closeSync(fd);
    rmSync(target, { force: true });
    throw error;
  }
  // A prepared record's directory entry was made durable when it was created.
  if (!prepared) fsyncDirOf(final);
  return { saved, runs: kept };
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
  const v2 = base.format !== 'qcow2';
  const completable = v2 && options.outsideWrites !== true;
  const record = durable ? yield* writeRecord(base, image, runs, oldSize, { v2, completable, newSize }, options) : { saved: 0, runs };
  const undoBytes = record.saved;
  // From here the record exists: a crash is rolled back by the next writer, a failure right here.
  let reached = 0;
  let bytes = 0;
  // A qcow2 appends clusters for the commit: a failure returns its metadata and length to here.
  let undoPoint: Qcow2Disk | undefined;
  try {
    if (durable && base instanceof Qcow2Disk) {
      base.markUndoPoint();
      undoPoint = base;
    }
    if (durable) options.onStep?.({ phase: 'record-durable' });
    if (newSize > oldSize) {
      options.onStep?.({ phase: 'grow', size: newSize });
      base.resize!(newSize);
    }
    for (const run of record.runs) {
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
    // Ctrl-C: the old image is decided (rolled back here, or from the record by the next run).
    reportAbort(options.signal);
    try {
      // The old metadata first: the record then restores only data written in place, and that
      // allocates nothing (every other range reads its old bytes again).
      undoPoint?.rollBackToUndoPoint();
      applyRecord(base, image, reached);
      punchUnsaved(base, record.runs, Math.min(reached, oldSize), options.needsNoSave);
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
  undoPoint?.dropUndoPoint();
  if (durable) {
    rmSync(recordPath(image), { force: true });
    // A record that proves completion may reappear after a crash: it is then dropped, not rolled
    // back (see the module comment), so its removal need not be durable before we return.
    if (completable) fsyncDirSoon(image);
    else fsyncDirOf(image);
  }
  overlay.clear();
  return { bytes, undoBytes, blocks, size: newSize };
}

/**
 * After an in-process rollback: the written blocks whose old bytes the record did not save (free
 * before the session, {@link CommitOptions.needsNoSave}) are punched, so they read as zeros again
 * — the old bytes of a sparse image's free space — as {@link FreeBlockWriter.undo} leaves data
 * written in place. The rolled-back filesystem does not use them either way.
 */
function punchUnsaved(base: Disk, runs: readonly ChangeRun[], reached: number, needsNoSave: CommitOptions['needsNoSave']): void {
  if (!needsNoSave) return;
  for (const run of runs) {
    const end = Math.min(run.position + run.length, reached);
    // Adjacent unsaved blocks are punched as one range (one fallocate, not one per block).
    let from = -1;
    for (let at = run.position; at < end; at += OVERLAY_BLOCK) {
      const unsaved = needsNoSave(at, Math.min(OVERLAY_BLOCK, end - at));
      if (unsaved && from < 0) from = at;
      if (!unsaved && from >= 0) {
        base.discard(from, at - from);
        from = -1;
      }
    }
    if (from >= 0 && end > from) base.discard(from, end - from);
  }
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

/** A changed block of a v2 record's completion list. */
interface DoneBlock {
  readonly position: number;
  readonly length: number;
  readonly crc: number;
}

/** A record as read back: complete (every checksum holds), or the valid prefix of a partial v2 record. */
interface ParsedRecord {
  readonly version: 1 | 2;
  readonly entries: RecordEntry[];
  /** Undefined only for a partial record whose header did not read back. */
  readonly originalSize: number | undefined;
  /** Why the record is partial; undefined when it is complete. */
  readonly partial: string | undefined;
  /** v2, complete: the new size and the changed blocks (empty unless completion is provable). */
  readonly done?: { readonly newSize: number; readonly completable: boolean; readonly blocks: readonly DoneBlock[] };
}

/** One entry at `at` of the record, or why it is not a valid one. */
function readEntry(fd: number, at: number): { entry: RecordEntry; next: number } | string {
  const head = Buffer.alloc(ENTRY_HEADER_SIZE);
  if (!readExactly(fd, head, at)) return 'truncated entry';
  const position = Number(head.readBigUInt64LE(0));
  const length = head.readUInt32LE(8);
  const flags = head.readUInt32LE(12);
  const crc = head.readUInt32LE(16);
  if (length === 0 || length > MAX_ENTRY_BYTES || (flags & ~FLAG_ZERO) !== 0 || !Number.isSafeInteger(position + length)) return `entry at record offset ${at} is out of bounds`;
  if (flags & FLAG_ZERO) return { entry: { position, length, dataAt: undefined }, next: at + ENTRY_HEADER_SIZE };
  const data = Buffer.allocUnsafe(length);
  if (!readExactly(fd, data, at + ENTRY_HEADER_SIZE)) return 'truncated data';
  if (crc32(data) !== crc) return `data checksum mismatch at image offset ${position}`;
  return { entry: { position, length, dataAt: at + ENTRY_HEADER_SIZE }, next: at + ENTRY_HEADER_SIZE + length };
}

/** The completion list of a v2 record at `at`, or why it does not read back. */
function readDone(fd: number, at: number): ParsedRecord['done'] | string {
  const head = Buffer.alloc(DONE_HEADER_SIZE);
  if (!readExactly(fd, head, at) || !head.subarray(0, 8).equals(DONE_MAGIC)) return 'no completion list';
  const newSize = Number(head.readBigUInt64LE(8));
  const completable = (head.readUInt32LE(16) & DONE_COMPLETABLE) !== 0;
  const count = head.readUInt32LE(20);
  if (count > MAX_ENTRIES) return 'completion list too long';
  const list = Buffer.alloc(DONE_HEADER_SIZE + count * DONE_ENTRY_SIZE + 4);
  if (!readExactly(fd, list, at)) return 'truncated completion list';
  const end = list.length - 4;
  if (list.readUInt32LE(end) !== crc32(list.subarray(0, end))) return 'completion list checksum mismatch';
  const blocks: DoneBlock[] = [];
  for (let p = DONE_HEADER_SIZE; p < end; p += DONE_ENTRY_SIZE) {
    blocks.push({ position: Number(list.readBigUInt64LE(p)), length: list.readUInt32LE(p + 8), crc: list.readUInt32LE(p + 12) });
  }
  return { newSize, completable, blocks };
}

/**
 * Reads the whole record (header and every checksum) before anything is written. A v1 record
 * (renamed into place complete) that does not read back is damaged; a v2 record (created in
 * place) may be partial — its valid entries are returned with the reason.
 */
function readRecord(fd: number, path: string): ParsedRecord {
  const header = Buffer.alloc(HEADER_SIZE);
  const got = readSync(fd, header, 0, HEADER_SIZE, 0);
  const whole = got === HEADER_SIZE;
  const magic = header.subarray(0, 8);
  const v1 = whole && (magic.equals(MAGIC) || magic.equals(MAGIC_QCOW2));
  // A v2 record killed before its sync may be cut short anywhere, or read back as zeros where its
  // blocks never reached the disk.
  const seen = Math.min(got, 8);
  const v2 = magic.subarray(0, seen).equals(MAGIC_V2.subarray(0, seen)) || magic.equals(Buffer.alloc(8));
  if (!v1 && !v2) throw damaged(path, 'bad header');
  const headerOk = whole && header.readUInt32LE(20) === crc32(header.subarray(0, 20)) && !magic.equals(Buffer.alloc(8));
  if (v1 && !headerOk) throw damaged(path, 'header checksum mismatch');
  const count = headerOk ? header.readUInt32LE(16) : MAX_ENTRIES;
  if (v1 && count > MAX_ENTRIES) throw damaged(path, `${count} entries exceed the limit of ${MAX_ENTRIES}`);
  const originalSize = headerOk ? Number(header.readBigUInt64LE(8)) : undefined;
  const entries: RecordEntry[] = [];
  let at = HEADER_SIZE;
  const partial = (why: string): ParsedRecord => ({ version: 2, entries, originalSize, partial: why });
  if (!headerOk) {
    // Walk what did reach the disk, to compare it with the image.
    for (let read = readEntry(fd, at); typeof read !== 'string' && entries.length < MAX_ENTRIES; read = readEntry(fd, at)) {
      entries.push(read.entry);
      at = read.next;
    }
    return partial(whole ? 'header checksum mismatch' : 'truncated header');
  }
  for (let i = 0; i < count; i += 1) {
    const read = readEntry(fd, at);
    if (typeof read === 'string') {
      if (v1) throw damaged(path, read);
      return partial(read);
    }
    entries.push(read.entry);
    at = read.next;
  }
  if (v1) return { version: 1, entries, originalSize, partial: undefined };
  const done = readDone(fd, at);
  if (typeof done === 'string') return partial(done);
  return { version: 2, entries, originalSize, partial: undefined, done };
}

/** True when the image's bytes of `entry` equal what the record saved (a zero entry: zeros). */
function entryMatches(disk: Disk, fd: number, entry: RecordEntry): boolean {
  if (entry.position >= disk.size) return false;
  const length = Math.min(entry.length, disk.size - entry.position);
  if (length < entry.length && entry.dataAt !== undefined) return false;
  const current = Buffer.allocUnsafe(length);
  disk.read(current, entry.position);
  if (entry.dataAt === undefined) return isZero(current);
  const saved = Buffer.allocUnsafe(length);
  return readExactly(fd, saved, entry.dataAt) && current.equals(saved);
}

/** True when every block of the completion list holds its new bytes and the image its new size. */
function commitCompleted(disk: Disk, done: NonNullable<ParsedRecord['done']>): boolean {
  if (!done.completable || disk.size !== done.newSize) return false;
  const block = Buffer.allocUnsafe(OVERLAY_BLOCK);
  for (const b of done.blocks) {
    if (b.length > OVERLAY_BLOCK || b.position + b.length > disk.size) return false;
    const bytes = block.subarray(0, b.length);
    disk.read(bytes, b.position);
    if (fastCrc32(bytes) !== b.crc) return false;
  }
  return true;
}

/** Removes the record beside `image` durably (recovery is rare; it must not come back). */
function dropRecord(path: string): void {
  rmSync(path, { force: true });
  fsyncDirOf(path);
}

/**
 * Restores `disk` from the record beside `image`, for entries starting before `limit`: writes only
 * where the current bytes differ (a hole entry whose range still reads as zeros is skipped; one
 * that does not is punched), truncates to the original size, fsyncs, removes the record. With
 * `recovering` (a record a crash left, not this process's failed commit), a leftover v2 record is
 * first classified: a partial one whose every readable entry equals the image belongs to a commit
 * that never wrote the image, a complete one whose blocks all hold their new bytes to a commit
 * that completed — either is dropped without writing the image.
 */
function applyRecord(disk: Disk, image: string, limit = Number.POSITIVE_INFINITY, recovering = false): 'rolled-back' | 'dropped' {
  const { fd, path } = openRecord(image);
  let open = true;
  const closeRecord = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  try {
    const record = readRecord(fd, path);
    if (record.partial !== undefined) {
      // Only a v2 record can be partial, and then its sync never returned: the image is the old one.
      if (!recovering || !record.entries.every((entry) => entryMatches(disk, fd, entry))) throw damaged(path, record.partial);
      closeRecord();
      dropRecord(path);
      return 'dropped';
    }
    if (recovering && record.done && commitCompleted(disk, record.done)) {
      closeRecord();
      dropRecord(path);
      return 'dropped';
    }
    const { entries } = record;
    const originalSize = record.originalSize!;
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
    closeRecord();
  }
  dropRecord(path);
  return 'rolled-back';
}

/**
 * Rolls back the commit that an interrupted run left on `image` (its real path; the caller holds
 * the write lock). Returns false when there was none, or when the record turned out to belong to
 * a commit that completed or never wrote the image (it is removed). Safe to call at any time.
 */
export function rollBackInterruptedCommit(image: string): boolean {
  if (!existsSync(recordPath(image))) return false;
  // The record says which view it saved: a qcow2's guest bytes, or the raw file's.
  const disk = recordIsQcow2(image) ? openQcow2Chain(image, { readOnly: false }) : RawFileDisk.open(image, { readOnly: false });
  try {
    return applyRecord(disk, image, Number.POSITIVE_INFINITY, true) === 'rolled-back';
  } finally {
    disk.close();
  }
}

/** Bytes a prepared record file is created with (a small commit's record fits: ~25 KiB for five small files). */
export const PREPARED_RECORD_BYTES = 64 * 1024;

/** A record file created ahead of a commit, off its critical path. */
export interface PreparedRecord {
  /** Resolves once the file (zeros, `capacity` bytes) and its directory entry are durable. */
  readonly ready: Promise<{ readonly fd: number; readonly capacity: number }>;
  /** Closes the file and removes it unless a commit armed it (idempotent; call when the session ends). */
  release(): Promise<void>;
}

/**
 * Creates the record file of the next commit on `image` (a raw image whose write lock the caller
 * holds, with no record beside it) in the background: zeros, fdatasynced, the directory fsynced.
 * A zero record is never pending (readers ignore it, writers drop it), so a crash while it
 * exists leaves nothing to recover. The commit then writes the record into it
 * ({@link CommitOptions.prepared}).
 */
export function prepareRecord(image: string, capacity = PREPARED_RECORD_BYTES): PreparedRecord {
  const path = recordPath(image);
  let handle: FileHandle | undefined;
  const ready = (async () => {
    handle = await openHandle(path, 'wx', 0o600);
    await handle.write(Buffer.alloc(capacity), 0, capacity, 0);
    await handle.datasync();
    await fsyncDirOfAsync(path);
    return { fd: handle.fd, capacity };
  })();
  ready.catch(() => undefined);
  let released = false;
  return {
    ready,
    release: async () => {
      if (released) return;
      released = true;
      await ready.catch(() => undefined);
      await handle?.close().catch(() => undefined);
      // Armed and left by a failed rollback: it must stay. Otherwise (zeros, or removed by the commit) it goes.
      if (!hasPendingRecord(image)) rmSync(path, { force: true });
    },
  };
}

/**
 * Makes the removal of the last commit's record beside `image` durable. Call before writing the
 * image outside a commit (file data in place): those bytes may land in blocks that commit
 * changed (freed in it), and a record coming back after a crash would then no longer prove the
 * commit completed.
 */
export function settleCompletedCommit(image: string): void {
  fsyncDirOf(recordPath(image));
}

/**
 * Starts an fsync of the directory holding `path` without waiting for it: the removal of a record
 * that proves completion becomes durable within milliseconds instead of at the filesystem's next
 * journal commit (correctness does not depend on it; a process exits only after it ran).
 */
function fsyncDirSoon(path: string): void {
  void fsyncDirOfAsync(path);
}
