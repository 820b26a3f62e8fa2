import { close, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { removeTempSoon, tempPathBeside } from '../io/atomic.js';
import { DiskwrightError } from '../errors.js';
import { checkRange } from './bounds.js';
import { hostError } from './host-error.js';
import type { AllocationExtent, Disk } from './types.js';

/** Granularity of the overlay: one 4 KiB page; smaller writes read-modify-write the page. */
export const OVERLAY_BLOCK = 4096;
/** Staged bytes kept in memory before further blocks spill to a temp file beside the image. */
export const DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024;
/** Longest run {@link Overlay.changes} yields (bounds the buffers a commit holds at once). */
export const MAX_CHANGE_RUN = 4 * 1024 * 1024;

/** A block marked "reads as zeros" (discarded); stores nothing. */
const ZERO = -1;
/** Blocks are cut from slabs: one allocation per 256 blocks. */
const SLAB_BLOCKS = 256;

/** One contiguous run of changed blocks, in image order. */
export interface ChangeRun {
  readonly position: number;
  readonly length: number;
  /** True: the run reads as zeros (discarded); `chunks` is then empty. */
  readonly zero: boolean;
  /** The new bytes, as consecutive pieces (views valid until the overlay changes). */
  readonly chunks: readonly Buffer[];
}

/** Spill files still on disk; removed at exit if a run dies between creating and closing one. */
const liveSpills = new Set<string>();
let exitHook = false;

/** Options of {@link Overlay}. */
export interface OverlayOptions {
  /** Bytes staged in memory before spilling (default {@link DEFAULT_MEMORY_LIMIT}). */
  readonly memoryLimit?: number;
}

/**
 * A copy-on-write layer over a Disk: reads see the base with this layer's changes on top, writes
 * never reach the base. Changed 4 KiB blocks are kept in memory and, past `memoryLimit`, in a
 * private temp file beside the image (`.NAME.diskwright-….tmp`, removed on close). The changes
 * reach the base only through {@link commitOverlay} (commit.ts), which makes them crash-safe.
 * The virtual size may grow (`resize`): the grown tail reads as zeros until written.
 */
export class Overlay implements Disk {
  readonly readOnly = false;
  readonly format;
  readonly path;
  private virtualSize: number;
  /** Block index → in-memory block, spill slot (≥ 0) or ZERO. */
  private readonly blocks = new Map<number, Buffer | number>();
  private memoryBytes = 0;
  private readonly memoryLimit: number;
  private slab: Buffer | undefined;
  private slabUsed = SLAB_BLOCKS;
  private spillPath: string | undefined;
  private spillFd: number | undefined;
  private spillSlots = 0;
  private closed = false;

  constructor(
    readonly base: Disk,
    options: OverlayOptions = {},
  ) {
    this.format = base.format;
    this.path = base.path;
    this.virtualSize = base.size;
    this.memoryLimit = options.memoryLimit ?? DEFAULT_MEMORY_LIMIT;
  }

  get backing(): Disk {
    return this.base;
  }

  get size(): number {
    return this.virtualSize;
  }

  /** Blocks changed so far. */
  get changedBlocks(): number {
    return this.blocks.size;
  }

  /** True when nothing would be committed. */
  get clean(): boolean {
    return this.blocks.size === 0 && this.virtualSize === this.base.size;
  }

  /** Bytes staged in the spill file (0 while everything fits in memory). */
  get spilledBytes(): number {
    return this.spillSlots * OVERLAY_BLOCK;
  }

  read(buffer: Uint8Array, position: number): void {
    checkRange(this.path, this.virtualSize, position, buffer.length);
    const end = position + buffer.length;
    let pos = position;
    while (pos < end) {
      const index = Math.floor(pos / OVERLAY_BLOCK);
      const within = pos - index * OVERLAY_BLOCK;
      const entry = this.blocks.get(index);
      if (entry !== undefined) {
        const n = Math.min(OVERLAY_BLOCK - within, end - pos);
        const target = buffer.subarray(pos - position, pos - position + n);
        this.readEntry(entry, target, within);
        pos += n;
        continue;
      }
      // Extend over every following block this layer does not hold: one base read for the run.
      let runEnd = Math.min((index + 1) * OVERLAY_BLOCK, end);
      while (runEnd < end && !this.blocks.has(runEnd / OVERLAY_BLOCK)) runEnd = Math.min(runEnd + OVERLAY_BLOCK, end);
      this.readBase(buffer.subarray(pos - position, runEnd - position), pos);
      pos = runEnd;
    }
  }

  write(buffer: Uint8Array, position: number): void {
    checkRange(this.path, this.virtualSize, position, buffer.length);
    const end = position + buffer.length;
    let pos = position;
    while (pos < end) {
      const index = Math.floor(pos / OVERLAY_BLOCK);
      const within = pos - index * OVERLAY_BLOCK;
      const n = Math.min(OVERLAY_BLOCK - within, end - pos);
      const piece = buffer.subarray(pos - position, pos - position + n);
      const entry = this.blocks.get(index);
      if (typeof entry === 'number' && entry >= 0) {
        if (n === OVERLAY_BLOCK) this.writeSpill(entry, piece);
        else {
          const block = Buffer.allocUnsafe(OVERLAY_BLOCK);
          this.readEntry(entry, block, 0);
          block.set(piece, within);
          this.writeSpill(entry, block);
        }
      } else if (entry instanceof Buffer) {
        entry.set(piece, within);
      } else {
        const block = this.newBlock();
        if (n < OVERLAY_BLOCK) {
          if (entry === ZERO) block.fill(0);
          else this.readBase(block, index * OVERLAY_BLOCK);
        }
        block.set(piece, within);
        this.store(index, block);
      }
      pos += n;
    }
  }

  flush(): void {
    // Durability is the commit's business.
  }

  discard(position: number, length: number): void {
    checkRange(this.path, this.virtualSize, position, length);
    const end = position + length;
    let pos = position;
    while (pos < end) {
      const index = Math.floor(pos / OVERLAY_BLOCK);
      const within = pos - index * OVERLAY_BLOCK;
      const n = Math.min(OVERLAY_BLOCK - within, end - pos);
      if (n === OVERLAY_BLOCK || (within === 0 && pos + n === this.virtualSize)) {
        this.drop(index);
        this.blocks.set(index, ZERO);
      } else {
        this.write(Buffer.alloc(n), pos);
      }
      pos += n;
    }
  }

  allocation(position: number, length: number): AllocationExtent[] {
    checkRange(this.path, this.virtualSize, position, length);
    const out: AllocationExtent[] = [];
    const push = (at: number, len: number, state: AllocationExtent['state']): void => {
      const last = out[out.length - 1];
      if (last && last.state === state && last.position + last.length === at) out[out.length - 1] = { position: last.position, length: last.length + len, state };
      else out.push({ position: at, length: len, state });
    };
    const end = position + length;
    let pos = position;
    while (pos < end) {
      const index = Math.floor(pos / OVERLAY_BLOCK);
      const entry = this.blocks.get(index);
      if (entry !== undefined) {
        const n = Math.min((index + 1) * OVERLAY_BLOCK, end) - pos;
        push(pos, n, entry === ZERO ? 'zero' : 'data');
        pos += n;
        continue;
      }
      let runEnd = Math.min((index + 1) * OVERLAY_BLOCK, end);
      while (runEnd < end && !this.blocks.has(runEnd / OVERLAY_BLOCK)) runEnd = Math.min(runEnd + OVERLAY_BLOCK, end);
      const baseEnd = Math.min(runEnd, this.base.size);
      if (pos < baseEnd) for (const e of this.base.allocation(pos, baseEnd - pos)) push(e.position, e.length, e.state);
      if (runEnd > Math.max(pos, baseEnd)) push(Math.max(pos, baseEnd), runEnd - Math.max(pos, baseEnd), 'zero');
      pos = runEnd;
    }
    return out;
  }

  /**
   * Drops this layer's changes of the whole blocks in `[position, position + length)` (both
   * multiples of {@link OVERLAY_BLOCK}): reads there see the base again. For a caller that has
   * written newer bytes of those blocks straight to the base (free-writes.ts).
   */
  forget(position: number, length: number): void {
    checkRange(this.path, this.virtualSize, position, length);
    if (position % OVERLAY_BLOCK !== 0 || length % OVERLAY_BLOCK !== 0) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected whole ${OVERLAY_BLOCK}-byte blocks to forget in ${this.path}, got \`${position}+${length}\``, { path: this.path });
    }
    for (let index = position / OVERLAY_BLOCK; index < (position + length) / OVERLAY_BLOCK; index += 1) this.drop(index);
  }

  /** Grows (or shrinks back towards the base size) the virtual size; blocks past a shrink are dropped. */
  resize(size: number): void {
    if (!Number.isSafeInteger(size) || size < this.base.size) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected the new size of ${this.path} to be at least its current ${this.base.size} bytes, got \`${size}\``, {
        path: this.path,
        hint: 'images only grow',
      });
    }
    const firstGone = Math.ceil(size / OVERLAY_BLOCK);
    for (const index of [...this.blocks.keys()]) if (index >= firstGone) this.drop(index);
    this.virtualSize = size;
  }

  /**
   * The changed blocks as runs in ascending order (data runs and zero runs, each at most
   * `maxRun` bytes, never past the virtual size). Views stay valid until the next write.
   */
  *changes(maxRun = MAX_CHANGE_RUN): Generator<ChangeRun> {
    const indexes = [...this.blocks.keys()].sort((a, b) => a - b);
    const perRun = Math.max(1, Math.floor(maxRun / OVERLAY_BLOCK));
    let i = 0;
    while (i < indexes.length) {
      const first = indexes[i]!;
      const zero = this.blocks.get(first) === ZERO;
      let count = 1;
      while (i + count < indexes.length && count < perRun && indexes[i + count] === first + count && (this.blocks.get(first + count) === ZERO) === zero) count += 1;
      const position = first * OVERLAY_BLOCK;
      const length = Math.min(count * OVERLAY_BLOCK, this.virtualSize - position);
      const chunks: Buffer[] = [];
      if (!zero) {
        for (let k = 0; k < count; k += 1) {
          const entry = this.blocks.get(first + k)!;
          const block = entry instanceof Buffer ? entry : Buffer.allocUnsafe(OVERLAY_BLOCK);
          if (!(entry instanceof Buffer)) this.readEntry(entry, block, 0);
          chunks.push(block);
        }
        const lastLength = length - (count - 1) * OVERLAY_BLOCK;
        if (lastLength < OVERLAY_BLOCK) chunks[count - 1] = chunks[count - 1]!.subarray(0, lastLength);
      }
      yield { position, length, zero, chunks };
      i += count;
    }
  }

  /** Drops every change (the virtual size returns to the base's). */
  clear(): void {
    this.blocks.clear();
    this.slab = undefined;
    this.slabUsed = SLAB_BLOCKS;
    this.memoryBytes = 0;
    this.spillSlots = 0;
    this.virtualSize = this.base.size;
  }

  /** Drops the changes and the spill file; the base stays open (its opener closes it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clear();
    // Freeing GiBs of spilled page cache took 0.4–1.5 s on the main thread (1.6 GiB, under load),
    // which kept an interrupted fs put from exiting: it runs beside the rest of the clean-up.
    if (this.spillPath) {
      removeTempSoon(this.spillPath, this.spillFd);
      liveSpills.delete(this.spillPath);
    } else if (this.spillFd !== undefined) close(this.spillFd, () => undefined);
    this.spillFd = undefined;
  }

  private readBase(target: Uint8Array, position: number): void {
    // Past the base's end (a grown overlay) reads as zeros.
    const inBase = Math.max(0, Math.min(target.length, this.base.size - position));
    if (inBase > 0) this.base.read(target.subarray(0, inBase), position);
    if (inBase < target.length) target.fill(0, inBase);
  }

  private readEntry(entry: Buffer | number, target: Uint8Array, within: number): void {
    if (entry instanceof Buffer) {
      target.set(entry.subarray(within, within + target.length));
    } else if (entry === ZERO) {
      target.fill(0);
    } else {
      const at = (entry as number) * OVERLAY_BLOCK + within;
      let done = 0;
      while (done < target.length) {
        const n = readSync(this.spillFd!, target, done, target.length - done, at + done);
        if (n === 0) throw new DiskwrightError('E_IO', `overlay spill file ${this.spillPath} is short`, { path: this.spillPath });
        done += n;
      }
    }
  }

  private newBlock(): Buffer {
    if (this.memoryBytes + OVERLAY_BLOCK > this.memoryLimit) return Buffer.allocUnsafe(OVERLAY_BLOCK);
    if (!this.slab || this.slabUsed === SLAB_BLOCKS) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BLOCKS * OVERLAY_BLOCK);
      this.slabUsed = 0;
    }
    const block = this.slab.subarray(this.slabUsed * OVERLAY_BLOCK, (this.slabUsed + 1) * OVERLAY_BLOCK);
    this.slabUsed += 1;
    return block;
  }

  private store(index: number, block: Buffer): void {
    if (this.memoryBytes + OVERLAY_BLOCK <= this.memoryLimit) {
      this.blocks.set(index, block);
      this.memoryBytes += OVERLAY_BLOCK;
      return;
    }
    const slot = this.spillSlots;
    this.spillSlots += 1;
    this.writeSpill(slot, block);
    this.blocks.set(index, slot);
  }

  private drop(index: number): void {
    const entry = this.blocks.get(index);
    if (entry instanceof Buffer) this.memoryBytes -= OVERLAY_BLOCK;
    this.blocks.delete(index);
  }

  private writeSpill(slot: number, block: Uint8Array): void {
    if (this.spillFd === undefined) {
      this.spillPath = tempPathBeside(this.path);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', () => {
          for (const path of liveSpills) rmSync(path, { force: true });
        });
      }
      liveSpills.add(this.spillPath);
      try {
        this.spillFd = openSync(this.spillPath, 'wx+', 0o600);
      } catch (error) {
        throw hostError(error, this.spillPath, 'create overlay spill file');
      }
    }
    const at = slot * OVERLAY_BLOCK;
    try {
      for (let done = 0; done < block.length; ) done += writeSync(this.spillFd, block, done, block.length - done, at + done);
    } catch (error) {
      throw hostError(error, this.spillPath!, 'write overlay spill file', at);
    }
  }
}
