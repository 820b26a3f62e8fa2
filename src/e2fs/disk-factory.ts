/**
 * The disk factory the e2fs worker imports (runE2fsTool's `diskFactory` hook): it builds, inside
 * the worker thread, the Disks a tool run is served instead of host files. The image is opened
 * through the block layer (`openResolved`: raw, or qcow2 with its trusted backing chain, in the
 * format the parent decided by the docs/qcow2.md rule) and served read-only, as a copy-on-write
 * Overlay whose changes go back to the caller (`afterRun`) to be committed there with the one
 * commit mechanism (src/disk/commit.ts), or — for a new private image only — writable as it is.
 * Everything crossing the thread boundary is structured-clonable data: Disk objects cannot.
 *
 * Loaded from dist/ (the worker cannot import TypeScript); see {@link diskFactoryModule}.
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tempPathBeside } from '../io/atomic.js';
import { DiskwrightError } from '../errors.js';
import { openResolved, Overlay, PartitionWindow, type Disk, type DiskFormat } from '../disk/index.js';
import { ZeroSkippingDisk } from './zero-reads.js';

/** One run of changed bytes, as it crosses between threads. */
export interface ShippedRun {
  readonly position: number;
  readonly length: number;
  /** The run reads as zeros (discarded); no data. */
  readonly zero: boolean;
  /** The bytes (in-memory shipping). */
  readonly data?: Uint8Array;
  /** Offset of the bytes in `ShippedChanges.spill` (spilled shipping). */
  readonly spillAt?: number;
}

/** An overlay's changes: its virtual size and changed runs (in image order). */
export interface ShippedChanges {
  readonly size: number;
  readonly runs: readonly ShippedRun[];
  /** A private temp file beside the image holding the runs' bytes; the receiver removes it. */
  readonly spill?: string;
}

/** What a tool run is served at one path (structured-clonable). */
export interface DiskSpec {
  /** Absolute path the tool opens (the hook's key). */
  readonly path: string;
  /** The host image file (its real path). */
  readonly image: string;
  /** The image's format as the parent resolved it (default raw). */
  readonly format?: DiskFormat;
  /**
   * Follow the qcow2's backing chain (its format was forced or recorded; default false: a probed
   * qcow2 naming a backing file is refused with E_UNTRUSTED_BACKING, the file never opened).
   */
  readonly trustBacking?: boolean;
  /**
   * `read`: the image, read-only. `overlay`: a copy-on-write overlay whose changes come back.
   * `direct`: the image opened writable and written as the tool writes it — only for a new
   * private file that is renamed into place when complete (nothing to commit, nothing shipped);
   * the caller's fsync before that rename is the one that counts, so a qcow2 is opened as scratch
   * (no fsync barriers of its own).
   */
  readonly mode: 'read' | 'overlay' | 'direct';
  /** Virtual size of the overlay (a grown image); default the file's size. */
  readonly size?: number;
  /** Changes earlier steps staged (they are the starting point of this run). */
  readonly changes?: ShippedChanges;
  /** Serve only this byte range of the image (a partition) at `path`. */
  readonly window?: { readonly offset: number; readonly size: number };
  /** Overlay bytes kept in memory before it spills beside the image. */
  readonly memoryLimit?: number;
  /**
   * Skip writes of zeros over bytes that already read as zeros (default true): the result reads
   * the same, and holes stay holes (the tools zero inode tables and new groups).
   */
  readonly sparse?: boolean;
  /** Record the byte ranges the tool reads (afterRun returns them as {@link RecordedReads}). */
  readonly recordReads?: boolean;
}

/** The byte ranges a run read from one served Disk (DiskSpec.recordReads). */
export interface RecordedReads {
  /** Flat `[position, length, …]` pairs, sorted and merged at 4 KiB granularity. */
  readonly reads: readonly number[];
  /** More reads than {@link MAX_RECORDED_READS} were made: the list holds the first ones. */
  readonly truncated: boolean;
}

/** Reads recorded per run at most (e2fsck of a 10 GiB ext3 makes ~5,500). */
export const MAX_RECORDED_READS = 1 << 18;
/** Granularity of recorded ranges (a filesystem block). */
const RECORD_UNIT = 4096;

/** Sorts and merges raw `[position, length]` pairs into whole {@link RECORD_UNIT} ranges. */
export function mergeReadRanges(raw: readonly number[]): number[] {
  const pairs: [number, number][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const start = Math.floor(raw[i]! / RECORD_UNIT) * RECORD_UNIT;
    const end = Math.ceil((raw[i]! + raw[i + 1]!) / RECORD_UNIT) * RECORD_UNIT;
    if (end > start) pairs.push([start, end]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [start, end] of pairs) {
    const last = out.length - 2;
    if (last >= 0 && start <= out[last]! + out[last + 1]!) out[last + 1] = Math.max(out[last + 1]!, end - out[last]!);
    else out.push(start, end - start);
  }
  return out;
}

export interface DiskFactoryArgs {
  readonly disks: readonly DiskSpec[];
}

/** Changes above this size travel through a spill file beside the image, not the message. */
export const SHIP_IN_MEMORY_BYTES = 128 * 1024 * 1024;

interface Built {
  readonly spec: DiskSpec;
  readonly image: Disk;
  readonly overlay: Overlay | undefined;
}

const ZEROS = Buffer.alloc(64 * 1024);

function isAllZero(bytes: Uint8Array): boolean {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let at = 0; at < view.length; at += ZEROS.length) {
    const end = Math.min(at + ZEROS.length, view.length);
    if (!view.subarray(at, end).equals(ZEROS.subarray(0, end - at))) return false;
  }
  return true;
}

/** Per run: which served Disk belongs to which spec (afterRun gets the served map back). */
const built = new WeakMap<Disk, Built>();

/** Writes shipped changes into an overlay (writes and discards; the overlay grows as needed). */
export function applyShippedChanges(overlay: Overlay, changes: ShippedChanges): void {
  if (changes.size > overlay.size) overlay.resize?.(changes.size);
  let fd: number | undefined;
  try {
    if (changes.spill !== undefined) fd = openSync(changes.spill, 'r');
    let buffer = Buffer.alloc(0);
    for (const run of changes.runs) {
      if (run.zero) {
        overlay.discard(run.position, run.length);
      } else if (run.data) {
        overlay.write(run.data, run.position);
      } else if (fd !== undefined && run.spillAt !== undefined) {
        if (buffer.length < run.length) buffer = Buffer.allocUnsafe(run.length);
        const piece = buffer.subarray(0, run.length);
        for (let done = 0; done < piece.length; ) {
          const n = readSync(fd, piece, done, piece.length - done, run.spillAt + done);
          if (n === 0) throw new DiskwrightError('E_IO', `change file ${changes.spill} is short`, { path: changes.spill });
          done += n;
        }
        overlay.write(piece, run.position);
      } else {
        throw new DiskwrightError('E_IO', `a shipped change at ${run.position} carries no data`);
      }
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Removes the spill file of shipped changes (idempotent). */
export function discardShippedChanges(changes: ShippedChanges | undefined): void {
  if (changes?.spill !== undefined) rmSync(changes.spill, { force: true });
}

/**
 * An overlay's changes as shippable data: in memory up to `inMemoryLimit` bytes, else written to a
 * private temp file beside the image (one sequential write; the receiver reads it once).
 */
export function shipChanges(overlay: Overlay, inMemoryLimit = SHIP_IN_MEMORY_BYTES): ShippedChanges {
  const runs = [...overlay.changes()];
  const total = runs.reduce((n, r) => n + (r.zero ? 0 : r.length), 0);
  if (total <= inMemoryLimit) {
    return {
      size: overlay.size,
      runs: runs.map((r) => (r.zero ? { position: r.position, length: r.length, zero: true } : { position: r.position, length: r.length, zero: false, data: Buffer.concat(r.chunks, r.length) })),
    };
  }
  const spill = tempPathBeside(overlay.path);
  const fd = openSync(spill, 'wx', 0o600);
  const shipped: ShippedRun[] = [];
  let at = 0;
  try {
    for (const run of runs) {
      if (run.zero) {
        shipped.push({ position: run.position, length: run.length, zero: true });
        continue;
      }
      shipped.push({ position: run.position, length: run.length, zero: false, spillAt: at });
      for (const chunk of run.chunks) {
        for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done, at + done);
        at += chunk.length;
      }
    }
  } catch (error) {
    closeSync(fd);
    rmSync(spill, { force: true });
    throw error;
  }
  closeSync(fd);
  return { size: overlay.size, runs: shipped, spill };
}

/** The Disk a tool is served: delegates to the top of the stack; closing it closes the stack. */
class ServedDisk implements Disk {
  private scratch = Buffer.alloc(0);
  /** Raw `[position, length]` pairs of the reads (DiskSpec.recordReads), or undefined. */
  readonly reads: number[] | undefined;
  readsTruncated = false;
  constructor(
    private readonly top: Disk,
    private readonly closeStack: () => void,
    private readonly sparse: boolean,
    recordReads = false,
  ) {
    this.reads = recordReads ? [] : undefined;
  }
  get size(): number {
    return this.top.size;
  }
  get readOnly(): boolean {
    return this.top.readOnly;
  }
  get format(): Disk['format'] {
    return this.top.format;
  }
  get path(): string {
    return this.top.path;
  }
  read(buffer: Uint8Array, position: number): void {
    if (this.reads !== undefined) {
      if (this.reads.length < 2 * MAX_RECORDED_READS) this.reads.push(position, buffer.length);
      else this.readsTruncated = true;
    }
    this.top.read(buffer, position);
  }
  write(buffer: Uint8Array, position: number): void {
    if (this.sparse && isAllZero(buffer)) {
      if (this.scratch.length < buffer.length) this.scratch = Buffer.allocUnsafe(buffer.length);
      const current = this.scratch.subarray(0, Math.min(buffer.length, Math.max(0, this.top.size - position)));
      if (current.length === buffer.length) {
        this.top.read(current, position);
        if (isAllZero(current)) return;
      }
    }
    this.top.write(buffer, position);
  }
  flush(): void {
    this.top.flush();
  }
  discard(position: number, length: number): void {
    this.top.discard(position, length);
  }
  allocation(position: number, length: number): ReturnType<Disk['allocation']> {
    return this.top.allocation(position, length);
  }
  resize(size: number): void {
    // resize2fs truncates a whole-image file after shrinking it: the caller truncates the file
    // after committing (an overlay never shrinks below its image), so a shrink is a no-op here.
    if (size <= this.top.size) return;
    if (!this.top.resize) throw new DiskwrightError('E_INVALID_ARGUMENT', `${this.path} cannot change size here`, { path: this.path });
    this.top.resize(size);
  }
  close(): void {
    this.closeStack();
  }
}

/** The worker hook: builds `{path → Disk}` from the specs. */
export function createDisks(args: DiskFactoryArgs): Record<string, Disk> {
  const disks: Record<string, Disk> = {};
  try {
    for (const spec of args.disks) {
      const format = spec.format ?? 'raw';
      const image = openResolved(spec.image, { format, source: spec.trustBacking === true ? 'forced' : 'probed' }, { readOnly: spec.mode !== 'direct', scratch: spec.mode === 'direct' });
      let top: Disk = image;
      let overlay: Overlay | undefined;
      if (spec.mode === 'direct' && spec.size !== undefined && spec.size > image.size) {
        if (!image.resize) {
          image.close();
          throw new DiskwrightError('E_INVALID_ARGUMENT', `${spec.image} cannot change size`, { path: spec.image });
        }
        image.resize(spec.size);
      }
      if (spec.mode === 'overlay') {
        overlay = new Overlay(image, spec.memoryLimit !== undefined ? { memoryLimit: spec.memoryLimit } : {});
        if (spec.size !== undefined && spec.size > image.size) overlay.resize(spec.size);
        if (spec.changes) {
          applyShippedChanges(overlay, spec.changes);
          // The sender keeps its own copy; a spill file is read once, by whoever applies it.
        }
        top = overlay;
      }
      // Served read-only: reads of known holes (an ext3's unused inode tables) are not made.
      if (spec.mode === 'read') top = new ZeroSkippingDisk(top);
      const served = spec.window ? new PartitionWindow(top, spec.window.offset, spec.window.size) : top;
      const disk = new ServedDisk(
        served,
        () => {
          try {
            overlay?.close();
          } finally {
            image.close();
          }
        },
        spec.sparse !== false,
        spec.recordReads === true,
      );
      built.set(disk, { spec, image, overlay });
      disks[spec.path] = disk;
    }
  } catch (error) {
    for (const disk of Object.values(disks)) disk.close();
    throw error;
  }
  return disks;
}

/**
 * The worker hook: after the run, every overlay's changes go back to the caller; a direct image
 * is flushed (a qcow2's metadata reaches the file; a failure here fails the run, not the close).
 */
export function afterRun(disks: Record<string, Disk>, result: { exitCode?: number; failure?: string }): Record<string, ShippedChanges | RecordedReads> | undefined {
  // A crashed run's writes are not trusted: the caller gets nothing to commit.
  if (result.failure !== undefined) return undefined;
  const out: Record<string, ShippedChanges | RecordedReads> = {};
  for (const [path, disk] of Object.entries(disks)) {
    const entry = built.get(disk);
    if (entry?.overlay) out[path] = shipChanges(entry.overlay);
    else if (entry?.spec.mode === 'direct') entry.image.flush();
    if (disk instanceof ServedDisk && disk.reads !== undefined && !entry?.overlay) {
      out[path] = { reads: mergeReadRanges(disk.reads), truncated: disk.readsTruncated };
    }
  }
  return out;
}
