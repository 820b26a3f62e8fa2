import { closeSync, fstatSync, read as readCallback } from 'node:fs';
import { DiskwrightError, LimitError } from '../../errors.js';
import type { AllocationExtent, AllocationState, Disk } from '../types.js';
import { decompressCluster } from './compress.js';
import {
  COMPAT_LAZY_REFCOUNTS, encodeQcow2Header, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, INCOMPAT_EXTL2, parseQcow2Header, type Qcow2Header,
} from './header.js';
import { L2_CACHE_BYTES, MAX_HOST_OFFSET, MAX_L1_BYTES, MAX_REFTABLE_BYTES, REFBLOCK_CACHE_BYTES } from './limits.js';
import { openHost, readFully, syncHost, truncateHost, writeFully } from './raw-file.js';

/** One run of {@link Qcow2Disk.storage}: how a guest range is stored in this layer. */
export interface Qcow2StorageExtent {
  readonly position: number;
  readonly length: number;
  /** `data`: at `host` in this file; `zero`: reads as zeros; `backing`: from the backing Disk; `compressed`: one cluster's part. */
  readonly state: 'data' | 'zero' | 'backing' | 'compressed';
  readonly host: number;
}

/** What the driver asks for when an image names a backing file. */
export interface BackingRequest {
  /** The name exactly as the header stores it. */
  readonly name: string;
  /** The name resolved against the image's directory (QEMU's rule for relative names). */
  readonly path: string;
  /** The backing format header extension, if any. */
  readonly format: string | undefined;
  /** Path of the image that names it. */
  readonly from: string;
}

export interface Qcow2OpenOptions {
  readonly readOnly?: boolean;
  /**
   * Opens the backing file an image names. Without it, an image that has a backing file is
   * refused (E_UNTRUSTED_BACKING): diskwright never follows a backing file nobody allowed.
   */
  readonly openBacking?: (request: BackingRequest) => Disk;
  /**
   * A new private file that is fsynced once and renamed into place when complete (a thin
   * instance's overlay while it is built): `flush()` writes the metadata in the same safe order
   * but without the fsync barriers between the steps. A crash before that final fsync leaves only
   * a temp file, which is removed; the barriers protect images other programs already use.
   */
  readonly scratch?: boolean;
}

/** Facts about an open qcow2 image, as `qemu-img info` reports them. */
export interface Qcow2Facts {
  readonly version: 2 | 3;
  readonly compat: '0.10' | '1.1';
  readonly clusterSize: number;
  readonly refcountBits: number;
  readonly lazyRefcounts: boolean;
  readonly dirty: boolean;
  readonly corrupt: boolean;
  readonly extendedL2: boolean;
  readonly compressionType: 'zlib' | 'zstd';
  readonly backingFile: string | undefined;
  readonly backingFormat: string | undefined;
  readonly snapshots: number;
}

type Kind = 'unallocated' | 'zero' | 'data' | 'compressed';

/** One guest cluster's L2 entry, decoded. */
interface Entry {
  readonly kind: Kind;
  /** Host offset of a standard cluster (0 when none), or of compressed data. */
  readonly host: number;
  readonly copied: boolean;
  /** Compressed: bytes from `host` to read. */
  readonly csize: number;
  /** Compressed: the refcounted span `[cstart, cstart + cspan)`. */
  readonly cstart: number;
  readonly cspan: number;
  /** Extended L2: allocation and zero bitmaps. */
  readonly alloc: number;
  readonly zeros: number;
}

/** A contiguous piece of a guest range, as the read and allocation paths see it. */
interface Segment {
  guest: number;
  length: number;
  state: 'data' | 'zero' | 'backing' | 'compressed';
  host: number;
  entry?: Entry;
}

interface Cached {
  readonly bytes: Uint8Array;
  dirty: boolean;
}

/** What {@link Qcow2Disk.markUndoPoint} keeps to return the file to that moment. */
interface UndoPoint {
  readonly fileSize: number;
  readonly end: number;
  readonly header: Qcow2Header;
  readonly virtualSize: number;
  readonly l1: Uint8Array;
  readonly l1Size: number;
  readonly l1Offset: number;
  readonly l2Offsets: readonly number[];
  readonly refTableOffset: number;
  readonly refTableClusters: number;
  readonly touched: boolean;
  readonly compressedCursor: number;
  /** Old bytes of each metadata cluster below `fileSize` overwritten since, by cluster index. */
  readonly before: Map<number, { readonly bytes: Uint8Array; readonly refcounts: boolean }>;
}

const TWO32 = 2 ** 32;
const FLAG_COPIED_HI = 0x80000000;
const FLAG_COMPRESSED_HI = 0x40000000;

function corrupt(message: string, offset: number, code: 'E_OUT_OF_RANGE' | 'E_OVERLAP' = 'E_OUT_OF_RANGE'): DiskwrightError {
  return new DiskwrightError(code, `qcow2: ${message}`, { offset, hint: 'the image is damaged; `qemu-img check` may tell more' });
}

/** Whether `[a, a + alen)` and `[b, b + blen)` share a byte. */
function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

/** The big-endian 32-bit word at `at` (no DataView per call: the read paths decode every entry). */
function uint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** The entry of a cluster whose L2 table does not exist (or lies past the L1 table). */
const UNALLOCATED: Entry = Object.freeze({ kind: 'unallocated', host: 0, copied: false, csize: 0, cstart: 0, cspan: 0, alloc: 0, zeros: 0 });

/** Standard host offset from the two big-endian words of an L1/L2 entry (bits 9–55). */
function hostOffset(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * TWO32 + (lo >>> 9) * 512;
}

/**
 * A qcow2 image as a {@link Disk} (QEMU docs/interop/qcow2.txt). Synchronous, like every Disk.
 *
 * Reads: versions 2 and 3, 512 B–2 MiB clusters, zero clusters, deflate and zstd compressed
 * clusters, extended L2 entries (subclusters), backing files through `openBacking`.
 * Writes: cluster allocation with eager refcounts (lazy-refcount images are kept consistent too),
 * copy-on-write of partial clusters from the backing file, discard as zero clusters (v3), L1 growth.
 * Metadata is written back on `flush()` in the order that keeps the file consistent at every
 * step: refcount blocks and table, then L2 tables, then the L1 table and header, then frees.
 * Writes are refused on images with snapshots, extended L2 entries, or the dirty or corrupt bit.
 */
export class Qcow2Disk implements Disk {
  readonly format = 'qcow2' as const;
  readonly readOnly: boolean;
  readonly backing: Disk | undefined;
  private header: Qcow2Header;
  private virtualSize: number;
  private fd: number | undefined;
  private fileSize: number;
  private readonly cs: number;
  private readonly cb: number;
  private readonly extL2: boolean;
  private readonly entryBytes: number;
  private readonly l2Entries: number;
  private readonly subclusterSize: number;
  private l1: Uint8Array;
  private l1Size: number;
  private l1Offset: number;
  private l1Dirty = false;
  private readonly l2Cache = new Map<number, Cached>();
  /** Every L2 table offset the active L1 names: data clusters must not overlap them. */
  private readonly l2Offsets = new Set<number>();
  private refTable: Uint8Array | undefined;
  private refTableOffset: number;
  private refTableClusters: number;
  private refTableDirty = false;
  private readonly refCache = new Map<number, Cached>();
  private readonly refBits: number;
  private readonly refPerBlock: number;
  private headerDirty = false;
  private touched = false;
  /** First cluster index past everything allocated: new clusters go here. */
  private end: number;
  /** Host byte where the next compressed cluster may start (0: start a new cluster). */
  private compressedCursor = 0;
  /** Refcount decrements to apply once the metadata no longer referencing them is durable. */
  private pendingFree: { start: number; length: number }[] = [];
  private lastInflated: { host: number; bytes: Uint8Array } | undefined;
  /** Scratch for {@link sameAsBacking} (at most one cluster). */
  private compareScratch = new Uint8Array(0);
  /** Qcow2OpenOptions.scratch: no fsync barriers in flush(). */
  private scratch = false;
  private undo: UndoPoint | undefined;

  private constructor(readonly path: string, fd: number, header: Qcow2Header, fileSize: number, readOnly: boolean, backing: Disk | undefined) {
    this.fd = fd;
    this.header = header;
    this.readOnly = readOnly;
    this.backing = backing;
    this.fileSize = fileSize;
    this.virtualSize = header.size;
    this.cs = header.clusterSize;
    this.cb = header.clusterBits;
    this.extL2 = (header.incompatibleFeatures & INCOMPAT_EXTL2) !== 0n;
    this.entryBytes = this.extL2 ? 16 : 8;
    this.l2Entries = this.cs / this.entryBytes;
    this.subclusterSize = this.extL2 ? this.cs / 32 : this.cs;
    this.l1Size = header.l1Size;
    this.l1Offset = header.l1TableOffset;
    this.l1 = new Uint8Array(0);
    this.refTableOffset = header.refcountTableOffset;
    this.refTableClusters = header.refcountTableClusters;
    this.refBits = 2 ** header.refcountOrder;
    this.refPerBlock = (this.cs * 8) / this.refBits;
    this.end = Math.ceil(fileSize / this.cs);
  }

  /** Opens `path` as qcow2. Its backing file is opened only through `options.openBacking`. */
  static open(path: string, options: Qcow2OpenOptions = {}): Qcow2Disk {
    const readOnly = options.readOnly ?? true;
    const fd = openHost(path, readOnly ? 'r' : 'r+');
    let backing: Disk | undefined;
    try {
      const fileSize = fstatSync(fd).size;
      const first = new Uint8Array(Math.min(fileSize, 2 ** 21));
      readFully(fd, first, 0, path);
      const probe = parseQcow2Header(first, fileSize);
      const header = parseQcow2Header(first.subarray(0, Math.min(first.length, probe.clusterSize)), fileSize);
      if (!readOnly) assertWritable(header, path);
      if (header.backingFile !== undefined) {
        if (!options.openBacking) {
          throw new DiskwrightError('E_UNTRUSTED_BACKING', `${path} names a backing file (${header.backingFile}) that diskwright was not allowed to follow`, {
            path,
            hint: 'pass --format qcow2 to trust this image and its backing chain, or convert it to a standalone image first',
          });
        }
        backing = options.openBacking({ name: header.backingFile, path: resolveBacking(path, header.backingFile), format: header.backingFormat, from: path });
      }
      const disk = new Qcow2Disk(path, fd, header, fileSize, readOnly, backing);
      disk.scratch = options.scratch === true;
      disk.loadTables();
      return disk;
    } catch (error) {
      backing?.close();
      closeSync(fd);
      throw error;
    }
  }

  /**
   * The header facts of `path` without opening its tables or backing file (for `info` on an image
   * whose backing chain is not trusted).
   */
  static inspect(path: string): { readonly size: number; readonly facts: Qcow2Facts } {
    const fd = openHost(path, 'r');
    try {
      const fileSize = fstatSync(fd).size;
      const first = new Uint8Array(Math.min(fileSize, 2 ** 21));
      readFully(fd, first, 0, path);
      const probe = parseQcow2Header(first, fileSize);
      const header = parseQcow2Header(first.subarray(0, Math.min(first.length, probe.clusterSize)), fileSize);
      return { size: header.size, facts: factsOf(header) };
    } finally {
      closeSync(fd);
    }
  }

  get size(): number {
    return this.virtualSize;
  }

  /**
   * The descriptor of this layer's own file: bulk readers reopen it through /proc/self/fd to read
   * {@link storage}'s data runs with O_DIRECT (buffered reads of them took 2–3× longer cold).
   */
  get hostFd(): number {
    return this.descriptor();
  }

  /** The header facts `info` reports. */
  facts(): Qcow2Facts {
    return factsOf(this.header);
  }

  /** Host file bytes the image occupies (qemu-img's actual-size is the allocated blocks instead). */
  get fileLength(): number {
    return this.fileSize;
  }

  private loadTables(): void {
    const needed = Math.ceil(this.virtualSize / (this.cs * this.l2Entries));
    if (this.l1Size < needed) throw corrupt(`the L1 table (${this.l1Size} entries) is too small for the virtual size ${this.virtualSize} (needs ${needed})`, 36);
    if (this.l1Size * 8 > MAX_L1_BYTES) throw new LimitError(`qcow2: the L1 table of ${this.l1Size} entries exceeds ${MAX_L1_BYTES} bytes`, { offset: 36, actual: this.l1Size });
    if (this.refTableClusters * this.cs > MAX_REFTABLE_BYTES) {
      throw new LimitError(`qcow2: the refcount table of ${this.refTableClusters} clusters exceeds ${MAX_REFTABLE_BYTES} bytes`, { offset: 56, actual: this.refTableClusters });
    }
    this.l1 = new Uint8Array(this.l1Size * 8);
    this.hostRead(this.l1, this.l1Offset);
    const dv = new DataView(this.l1.buffer);
    for (let i = 0; i < this.l1Size; i++) {
      const off = hostOffset(dv.getUint32(i * 8), dv.getUint32(i * 8 + 4));
      if (off === 0) continue;
      this.checkMetadataCluster(off, `L2 table of L1 entry ${i}`);
      this.l2Offsets.add(off);
    }
  }

  /** A cluster-sized metadata structure must be aligned, inside the file and clear of the fixed tables. */
  private checkMetadataCluster(off: number, what: string): void {
    if (off % this.cs !== 0) throw corrupt(`${what} at ${off} is not cluster-aligned`, off);
    if (off + this.cs > this.hostEnd() || off >= MAX_HOST_OFFSET) throw corrupt(`${what} at ${off} is past the end of the file (${this.fileSize})`, off);
    this.checkClearOfFixed(off, this.cs, what);
  }

  private checkClearOfFixed(off: number, length: number, what: string): void {
    // Called once per data cluster a read maps: no closure here.
    if (overlaps(off, length, 0, this.cs)) throw corrupt(`${what} at ${off} overlaps the header`, off, 'E_OVERLAP');
    if (this.l1Size > 0 && overlaps(off, length, this.l1Offset, this.l1Size * 8)) throw corrupt(`${what} at ${off} overlaps the L1 table`, off, 'E_OVERLAP');
    if (overlaps(off, length, this.refTableOffset, this.refTableClusters * this.cs)) throw corrupt(`${what} at ${off} overlaps the refcount table`, off, 'E_OVERLAP');
  }

  /** End of what the file holds or this session has allocated (fresh metadata may be unwritten). */
  private hostEnd(): number {
    return Math.max(this.fileSize, this.end * this.cs);
  }

  // ---- host I/O -------------------------------------------------------------------------------

  private descriptor(): number {
    if (this.fd === undefined) throw new DiskwrightError('E_IO', `${this.path}: used after close`, { path: this.path });
    return this.fd;
  }

  private hostRead(buffer: Uint8Array, position: number): void {
    readFully(this.descriptor(), buffer, position, this.path);
  }

  private hostWrite(buffer: Uint8Array, position: number): void {
    writeFully(this.descriptor(), buffer, position, this.path);
    if (position + buffer.length > this.fileSize) this.fileSize = position + buffer.length;
  }

  /**
   * {@link hostWrite} of the image's own metadata (header, L1, L2, refcount table and blocks):
   * after {@link markUndoPoint}, the old bytes of each cluster it overwrites in the old file are
   * kept first (metadata of the old file only changes in place; new clusters go past its end).
   */
  private metadataWrite(buffer: Uint8Array, position: number, refcounts = false): void {
    const undo = this.undo;
    if (undo) {
      const stop = Math.min(position + buffer.length, undo.fileSize);
      for (let c = Math.floor(position / this.cs); c * this.cs < stop; c++) {
        if (undo.before.has(c)) continue;
        const bytes = new Uint8Array(this.cs);
        this.hostRead(bytes, c * this.cs);
        undo.before.set(c, { bytes, refcounts });
      }
    }
    this.hostWrite(buffer, position);
  }

  // ---- L1 / L2 --------------------------------------------------------------------------------

  private l1Entry(index: number): { off: number; copied: boolean } {
    const dv = new DataView(this.l1.buffer, this.l1.byteOffset + index * 8, 8);
    const hi = dv.getUint32(0);
    return { off: hostOffset(hi, dv.getUint32(4)), copied: (hi & FLAG_COPIED_HI) !== 0 };
  }

  private loadL2(off: number): Cached {
    return this.loadCluster(this.l2Cache, L2_CACHE_BYTES, off);
  }

  /** One metadata cluster through a bounded cache. */
  private loadCluster(cache: Map<number, Cached>, limit: number, off: number): Cached {
    let entry = cache.get(off);
    if (entry) return entry;
    if (cache.size * this.cs >= limit) this.evict(cache);
    const bytes = new Uint8Array(this.cs);
    this.hostRead(bytes, off);
    entry = { bytes, dirty: false };
    cache.set(off, entry);
    return entry;
  }

  /** Drops clean cached tables; dirty ones are written back (in order) first. */
  private evict(cache: Map<number, Cached>): void {
    if ([...cache.values()].some((t) => t.dirty)) this.flush();
    cache.clear();
  }

  private entry(cluster: number): Entry {
    const l1i = Math.floor(cluster / this.l2Entries);
    if (l1i >= this.l1Size) return UNALLOCATED;
    const { off } = this.l1Entry(l1i);
    if (off === 0) return UNALLOCATED;
    return this.decode(this.loadL2(off).bytes, cluster);
  }

  /** The entry of `cluster` in its L2 table `table` (validated as {@link entry} says). */
  private decode(table: Uint8Array, cluster: number): Entry {
    const at = (cluster % this.l2Entries) * this.entryBytes;
    const hi = uint32(table, at);
    const lo = uint32(table, at + 4);
    const alloc = this.extL2 ? uint32(table, at + 12) : 0;
    const zeros = this.extL2 ? uint32(table, at + 8) : 0;
    if (hi & FLAG_COMPRESSED_HI) return this.compressedEntry(hi, lo, cluster);
    const host = hostOffset(hi, lo);
    const copied = (hi & FLAG_COPIED_HI) !== 0;
    if (host !== 0) {
      if (host % this.cs !== 0) throw corrupt(`data cluster of guest cluster ${cluster} at ${host} is not cluster-aligned`, host);
      if (host >= this.hostEnd()) throw corrupt(`data cluster of guest cluster ${cluster} at ${host} is past the end of the file (${this.fileSize})`, host);
      this.checkClearOfFixed(host, this.cs, `data cluster of guest cluster ${cluster}`);
      if (this.l2Offsets.has(host)) throw corrupt(`data cluster of guest cluster ${cluster} at ${host} overlaps an L2 table`, host, 'E_OVERLAP');
    }
    if (this.extL2) return { kind: host !== 0 ? 'data' : 'unallocated', host, copied, csize: 0, cstart: 0, cspan: 0, alloc, zeros };
    // Bit 0: reads as zeros (QEMU reads a v2 image's stray zero flag the same way).
    if (lo & 1) return { kind: 'zero', host, copied, csize: 0, cstart: 0, cspan: 0, alloc, zeros };
    return { kind: host !== 0 ? 'data' : 'unallocated', host, copied, csize: 0, cstart: 0, cspan: 0, alloc, zeros };
  }

  private compressedEntry(hi: number, lo: number, cluster: number): Entry {
    // qcow2.txt: x = 62 - (cluster_bits - 8); bits 0..x-1 offset, bits x..61 additional sectors.
    const value = (BigInt(hi & 0x3fffffff) << 32n) | BigInt(lo);
    const shift = BigInt(62 - (this.cb - 8));
    const host = Number(value & ((1n << shift) - 1n));
    const sectors = Number((value >> shift) & ((1n << BigInt(this.cb - 8)) - 1n)) + 1;
    const cstart = host - (host % 512);
    const cspan = sectors * 512;
    if (host >= this.fileSize) throw corrupt(`compressed data of guest cluster ${cluster} at ${host} is past the end of the file (${this.fileSize})`, host);
    this.checkClearOfFixed(cstart, cspan, `compressed data of guest cluster ${cluster}`);
    return { kind: 'compressed', host, copied: false, csize: cstart + cspan - host, cstart, cspan, alloc: 0, zeros: 0 };
  }

  /**
   * Splits `[position, position + length)` into merged segments of one state each. Walks one L2
   * table at a time: a span whose L1 entry is empty is one unallocated segment (what
   * {@link entry} says of each of its clusters, merged), and a table is looked up once per span,
   * not once per cluster (a bulk read of a 2 GiB image maps 32768 clusters).
   */
  private segments(position: number, length: number): Segment[] {
    const out: Segment[] = [];
    const push = (guest: number, len: number, state: Segment['state'], host: number, entry?: Entry): void => {
      const last = out[out.length - 1];
      if (last && last.state === state && state !== 'compressed' && last.guest + last.length === guest && (state !== 'data' || last.host + last.length === host)) {
        last.length += len;
      } else out.push(entry ? { guest, length: len, state, host, entry } : { guest, length: len, state, host });
    };
    const unallocated = this.backing ? 'backing' : 'zero';
    const span = this.cs * this.l2Entries;
    let pos = position;
    const endPos = position + length;
    while (pos < endPos) {
      const l1i = Math.floor(pos / span);
      const spanEnd = Math.min(endPos, (l1i + 1) * span);
      const off = l1i < this.l1Size ? this.l1Entry(l1i).off : 0;
      if (off === 0) {
        push(pos, spanEnd - pos, unallocated, 0);
        pos = spanEnd;
        continue;
      }
      const table = this.loadL2(off).bytes;
      while (pos < spanEnd) {
        const cluster = Math.floor(pos / this.cs);
        const inCluster = pos - cluster * this.cs;
        const n = Math.min(this.cs - inCluster, spanEnd - pos);
        const e = this.decode(table, cluster);
        if (e.kind === 'compressed') push(pos, n, 'compressed', e.host, e);
        else if (this.extL2) {
          let at = inCluster;
          while (at < inCluster + n) {
            const sc = Math.floor(at / this.subclusterSize);
            const take = Math.min((sc + 1) * this.subclusterSize, inCluster + n) - at;
            const bit = 2 ** sc;
            const allocated = Math.floor(e.alloc / bit) % 2 === 1;
            const zero = Math.floor(e.zeros / bit) % 2 === 1;
            if (allocated) {
              if (e.host === 0) throw corrupt(`guest cluster ${cluster} has allocated subclusters but no host cluster`, pos);
              push(cluster * this.cs + at, take, 'data', e.host + at);
            } else push(cluster * this.cs + at, take, zero ? 'zero' : unallocated, 0);
            at += take;
          }
        } else if (e.kind === 'data') push(pos, n, 'data', e.host + inCluster);
        else push(pos, n, e.kind === 'zero' ? 'zero' : unallocated, 0);
        pos += n;
      }
    }
    return out;
  }

  // ---- Disk: read -----------------------------------------------------------------------------

  private checkRange(position: number, length: number, what: string): void {
    if (!Number.isSafeInteger(position) || position < 0 || position + length > this.virtualSize) {
      throw new DiskwrightError('E_OUT_OF_RANGE', `${this.path}: ${what} of ${length} bytes at ${position} is outside the ${this.virtualSize}-byte disk`, { path: this.path, offset: position });
    }
  }

  read(buffer: Uint8Array, position: number): void {
    this.checkRange(position, buffer.length, 'read');
    for (const seg of this.segments(position, buffer.length)) {
      const part = buffer.subarray(seg.guest - position, seg.guest - position + seg.length);
      if (seg.state === 'data') this.hostRead(part, seg.host);
      else if (seg.state === 'zero') part.fill(0);
      else if (seg.state === 'backing') this.readBacking(part, seg.guest);
      else {
        const inflated = this.inflate(seg.entry!);
        const from = seg.guest % this.cs;
        part.set(inflated.subarray(from, from + seg.length));
      }
    }
  }

  private readBacking(part: Uint8Array, guest: number): void {
    const backing = this.backing!;
    const have = Math.max(0, Math.min(part.length, backing.size - guest));
    if (have > 0) backing.read(part.subarray(0, have), guest);
    part.fill(0, have);
  }

  private inflate(e: Entry): Uint8Array {
    if (this.lastInflated?.host === e.host) return this.lastInflated.bytes;
    const input = new Uint8Array(Math.min(e.csize, this.fileSize - e.host));
    this.hostRead(input, e.host);
    const bytes = new Uint8Array(this.cs);
    decompressCluster(this.header.compressionType, input, bytes, e.host);
    this.lastInflated = { host: e.host, bytes };
    return bytes;
  }

  /**
   * Where the guest range `[position, position + length)` is stored in this file, for bulk readers
   * (convert, extract) that read the data runs themselves with {@link readHostAsync}: `data`
   * extents carry their host offset (host-contiguous runs merged), `compressed` and `backing`
   * extents must go through {@link read}.
   */
  storage(position: number, length: number): readonly Qcow2StorageExtent[] {
    this.checkRange(position, length, 'storage query');
    return this.segments(position, length).map((s) => ({ position: s.guest, length: s.length, state: s.state, host: s.host }));
  }

  /** Reads host bytes of this file (a `data` extent of {@link storage}) on the libuv pool. */
  async readHostAsync(buffer: Uint8Array, host: number): Promise<void> {
    const fd = this.descriptor();
    let done = 0;
    while (done < buffer.length) {
      const n = await new Promise<number>((resolve, reject) => {
        readCallback(fd, buffer, done, buffer.length - done, host + done, (error, bytes) => (error ? reject(new DiskwrightError('E_IO', `${this.path}: read at ${host + done} failed: ${error.code ?? String(error)}`, { path: this.path, cause: error })) : resolve(bytes)));
      });
      if (n === 0) break;
      done += n;
    }
    // Past the end of the file reads as zeros, as in hostRead.
    if (done < buffer.length) buffer.fill(0, done);
  }

  allocation(position: number, length: number): AllocationExtent[] {
    this.checkRange(position, length, 'allocation query');
    const out: { position: number; length: number; state: AllocationState }[] = [];
    for (const seg of this.segments(position, length)) {
      const state: AllocationState = seg.state === 'compressed' ? 'data' : seg.state;
      const last = out[out.length - 1];
      if (last && last.state === state) last.length += seg.length;
      else out.push({ position: seg.guest, length: seg.length, state });
    }
    return out;
  }

  // ---- refcounts ------------------------------------------------------------------------------

  private loadRefTable(): Uint8Array {
    if (!this.refTable) {
      this.refTable = new Uint8Array(this.refTableClusters * this.cs);
      this.hostRead(this.refTable, this.refTableOffset);
    }
    return this.refTable;
  }

  private refBlockOffset(blockIndex: number): number {
    const table = this.loadRefTable();
    if (blockIndex * 8 >= table.length) return 0;
    const dv = new DataView(table.buffer, blockIndex * 8, 8);
    const off = hostOffset(dv.getUint32(0), dv.getUint32(4));
    if (off !== 0) this.checkMetadataCluster(off, `refcount block ${blockIndex}`);
    return off;
  }

  private loadRefBlock(off: number): Cached {
    return this.loadCluster(this.refCache, REFBLOCK_CACHE_BYTES, off);
  }

  private getRef(cluster: number): number {
    const off = this.refBlockOffset(Math.floor(cluster / this.refPerBlock));
    if (off === 0) return 0;
    return readRefEntry(this.loadRefBlock(off).bytes, cluster % this.refPerBlock, this.refBits);
  }

  private setRef(cluster: number, value: number): void {
    const blockIndex = Math.floor(cluster / this.refPerBlock);
    if (blockIndex * 8 >= this.loadRefTable().length) this.growRefTable(blockIndex);
    let off = this.refBlockOffset(blockIndex);
    if (off === 0) {
      // A new refcount block at the end; it may well describe itself.
      const at = this.end++;
      off = at * this.cs;
      this.refCache.set(off, { bytes: new Uint8Array(this.cs), dirty: true });
      const dv = new DataView(this.refTable!.buffer, blockIndex * 8, 8);
      dv.setUint32(0, Math.floor(off / TWO32));
      dv.setUint32(4, off % TWO32);
      this.refTableDirty = true;
      this.setRef(at, 1);
    }
    const block = this.loadRefBlock(off);
    if (value >= 2 ** Math.min(this.refBits, 53)) throw new LimitError(`qcow2: refcount of cluster ${cluster} would overflow ${this.refBits} bits`, { offset: cluster * this.cs });
    writeRefEntry(block.bytes, cluster % this.refPerBlock, this.refBits, value);
    block.dirty = true;
  }

  private growRefTable(blockIndex: number): void {
    const oldTable = this.loadRefTable();
    const entries = Math.max(blockIndex + 2, Math.ceil((oldTable.length / 8) * 1.5));
    const clusters = Math.ceil((entries * 8) / this.cs);
    if (clusters * this.cs > MAX_REFTABLE_BYTES) throw new LimitError(`qcow2: the refcount table would exceed ${MAX_REFTABLE_BYTES} bytes`, { path: this.path });
    const table = new Uint8Array(clusters * this.cs);
    table.set(oldTable);
    const at = this.end;
    this.end += clusters;
    this.pendingFree.push({ start: this.refTableOffset, length: this.refTableClusters * this.cs });
    this.refTable = table;
    this.refTableOffset = at * this.cs;
    this.refTableClusters = clusters;
    this.refTableDirty = true;
    this.headerDirty = true;
    for (let c = at; c < at + clusters; c++) this.setRef(c, 1);
  }

  /** `count` contiguous new clusters at the end of the file, refcount 1. */
  private allocate(count: number): number {
    const at = this.end;
    this.end += count;
    for (let c = at; c < at + count; c++) this.setRef(c, 1);
    if (this.end * this.cs > MAX_HOST_OFFSET) throw new LimitError('qcow2: the image file would exceed 64 PiB', { path: this.path });
    return at * this.cs;
  }

  // ---- Disk: write ----------------------------------------------------------------------------

  private assertOpenForWrite(): void {
    if (this.readOnly) throw new DiskwrightError('E_IO', `${this.path} is open read-only`, { path: this.path });
    if (!this.touched) {
      this.touched = true;
      // qcow2.txt, autoclear_features: bits we do not maintain (all of them: no bitmaps, no raw
      // external data file) must be cleared *before* the image changes, so the cleared header is
      // durable before the first write.
      if (this.header.autoclearFeatures !== 0n) {
        this.header = { ...this.header, autoclearFeatures: 0n };
        this.writeHeader();
        this.barrier();
      }
    }
  }

  private l2ForWrite(cluster: number): { table: Cached; index: number } {
    const l1i = Math.floor(cluster / this.l2Entries);
    const { off, copied } = this.l1Entry(l1i);
    if (off !== 0 && !copied && this.getRef(off / this.cs) !== 1) {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${this.path}: L2 table at ${off} is shared (snapshots); diskwright does not write such images`, { path: this.path });
    }
    if (off !== 0) return { table: this.loadL2(off), index: cluster % this.l2Entries };
    const at = this.allocate(1);
    const table: Cached = { bytes: new Uint8Array(this.cs), dirty: true };
    if (this.l2Cache.size * this.cs >= L2_CACHE_BYTES) this.evict(this.l2Cache);
    this.l2Cache.set(at, table);
    this.l2Offsets.add(at);
    const dv = new DataView(this.l1.buffer, l1i * 8, 8);
    dv.setUint32(0, (Math.floor(at / TWO32) | FLAG_COPIED_HI) >>> 0);
    dv.setUint32(4, at % TWO32);
    this.l1Dirty = true;
    return { table, index: cluster % this.l2Entries };
  }

  /** Points guest `cluster` at `host` (0 with `zero`: a plain zero cluster; 0 alone: unallocated). */
  private setEntry(cluster: number, host: number, zero = false): void {
    const { table, index } = this.l2ForWrite(cluster);
    const dv = new DataView(table.bytes.buffer, index * this.entryBytes, 8);
    const hi = host === 0 ? 0 : (Math.floor(host / TWO32) | FLAG_COPIED_HI) >>> 0;
    dv.setUint32(0, hi);
    dv.setUint32(4, (host % TWO32) + (zero ? 1 : 0));
    table.dirty = true;
  }

  /** Schedules the old storage of an entry for release once nothing durable references it. */
  private release(e: Entry): void {
    if (e.kind === 'compressed') this.pendingFree.push({ start: e.cstart, length: e.cspan });
    else if (e.host !== 0) this.pendingFree.push({ start: e.host, length: this.cs });
    if (e.kind === 'compressed' && this.lastInflated?.host === e.host) this.lastInflated = undefined;
  }

  write(buffer: Uint8Array, position: number): void {
    this.checkRange(position, buffer.length, 'write');
    this.assertOpenForWrite();
    let pos = position;
    const endPos = position + buffer.length;
    while (pos < endPos) {
      const cluster = Math.floor(pos / this.cs);
      const inCluster = pos - cluster * this.cs;
      const n = Math.min(this.cs - inCluster, endPos - pos);
      const e = this.entry(cluster);
      const src = buffer.subarray(pos - position, pos - position + n);
      if (e.kind === 'unallocated' && this.backing && this.sameAsBacking(src, pos)) {
        // Nothing the guest sees changes: store nothing (libext2fs rewrites every bitmap and
        // descriptor block on close; a thin overlay would copy each one up).
        pos += n;
        continue;
      }
      if (e.kind === 'data' && e.copied) {
        // In place; extend over following clusters that are in place and contiguous too.
        let run = n;
        for (let next = cluster + 1; pos + run < endPos; next++) {
          const ne = this.entry(next);
          if (!(ne.kind === 'data' && ne.copied && ne.host === e.host + (next - cluster) * this.cs)) break;
          run += Math.min(this.cs, endPos - pos - run);
        }
        this.hostWrite(buffer.subarray(pos - position, pos - position + run), e.host + inCluster);
        pos += run;
        continue;
      }
      if (inCluster === 0 && n === this.cs) {
        // Whole new clusters: allocate a contiguous run and write it in one go.
        let count = 1;
        while (pos + (count + 1) * this.cs <= endPos) {
          const ne = this.entry(cluster + count);
          if (ne.kind === 'data' && ne.copied) break;
          count++;
        }
        const host = this.allocate(count);
        this.hostWrite(buffer.subarray(pos - position, pos - position + count * this.cs), host);
        for (let i = 0; i < count; i++) {
          const old = i === 0 ? e : this.entry(cluster + i);
          this.setEntry(cluster + i, host + i * this.cs);
          this.release(old);
        }
        pos += count * this.cs;
        continue;
      }
      // Copy-on-write of a partly written cluster: what the guest sees now, then the new bytes.
      const full = new Uint8Array(this.cs);
      const visible = Math.min(this.cs, this.virtualSize - cluster * this.cs);
      this.read(full.subarray(0, visible), cluster * this.cs);
      full.set(src, inCluster);
      const host = this.allocate(1);
      this.hostWrite(full, host);
      this.setEntry(cluster, host);
      this.release(e);
      pos += n;
    }
  }

  /** True when `bytes` equal what the backing chain shows at `guest` (an unallocated range). */
  private sameAsBacking(bytes: Uint8Array, guest: number): boolean {
    if (this.compareScratch.length < bytes.length) this.compareScratch = new Uint8Array(bytes.length);
    const current = this.compareScratch.subarray(0, bytes.length);
    this.readBacking(current, guest);
    return Buffer.from(current.buffer, current.byteOffset, current.length).equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  /**
   * Stores guest cluster `cluster` as compressed bytes (from {@link compressCluster}), packed
   * byte-wise after the previous compressed cluster as QEMU does. For fresh images (convert -c).
   */
  writeCompressed(cluster: number, compressed: Uint8Array): void {
    this.checkRange(cluster * this.cs, 1, 'compressed write');
    this.assertOpenForWrite();
    if (compressed.length > this.cs) throw new DiskwrightError('E_INVALID_ARGUMENT', 'compressed cluster larger than a cluster', { path: this.path });
    const old = this.entry(cluster);
    let start = this.compressedCursor;
    // Continue in the current cluster only if the data may spill into the very next one, which
    // must then be fresh at the end of the file.
    const startCluster = Math.floor(start / this.cs);
    if (start === 0 || startCluster !== this.end - 1 || start % this.cs === 0) start = this.allocate(1);
    else this.setRef(startCluster, this.getRef(startCluster) + 1);
    const last = start + compressed.length - 1;
    for (let c = Math.floor(start / this.cs) + 1; c <= Math.floor(last / this.cs); c++) {
      if (c !== this.end) throw new DiskwrightError('E_IO', 'qcow2: compressed allocation lost contiguity', { path: this.path });
      this.allocate(1);
    }
    this.hostWrite(compressed, start);
    this.compressedCursor = last + 1;
    const sectors = Math.floor(last / 512) - Math.floor(start / 512);
    const value = (1n << 62n) | (BigInt(sectors) << BigInt(62 - (this.cb - 8))) | BigInt(start);
    const { table, index } = this.l2ForWrite(cluster);
    const dv = new DataView(table.bytes.buffer, index * this.entryBytes, 8);
    dv.setBigUint64(0, value);
    table.dirty = true;
    this.release(old);
  }

  discard(position: number, length: number): void {
    this.checkRange(position, length, 'discard');
    this.assertOpenForWrite();
    let pos = position;
    const endPos = position + length;
    while (pos < endPos) {
      const cluster = Math.floor(pos / this.cs);
      const inCluster = pos - cluster * this.cs;
      const clusterEnd = Math.min((cluster + 1) * this.cs, this.virtualSize);
      const n = Math.min(clusterEnd - pos, endPos - pos);
      const e = this.entry(cluster);
      const readsZero = e.kind === 'zero' || (e.kind === 'unallocated' && !this.backing);
      if (!readsZero) {
        if (inCluster === 0 && pos + n === clusterEnd) {
          if (this.header.version === 3) this.setEntry(cluster, 0, true);
          else if (!this.backing) this.setEntry(cluster, 0);
          else {
            // v2 has no zero clusters: over a backing file, zeros must be stored.
            this.write(new Uint8Array(n), pos);
            pos += n;
            continue;
          }
          this.release(e);
        } else this.write(new Uint8Array(n), pos);
      }
      pos += n;
    }
  }

  resize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0) throw new DiskwrightError('E_INVALID_ARGUMENT', `invalid size ${size}`);
    this.assertOpenForWrite();
    if (size < this.virtualSize) {
      this.shrink(size);
      return;
    }
    const oldSize = this.virtualSize;
    const needed = Math.ceil(size / (this.cs * this.l2Entries));
    if (needed * 8 > MAX_L1_BYTES) throw new LimitError(`qcow2: ${size} bytes need an L1 table larger than ${MAX_L1_BYTES} bytes`, { hint: 'use a larger --cluster-size' });
    if (needed > this.l1Size) {
      const capacity = this.l1Size === 0 ? 0 : Math.ceil((this.l1Size * 8) / this.cs) * this.cs;
      const l1 = new Uint8Array(Math.ceil((needed * 8) / this.cs) * this.cs);
      l1.set(this.l1);
      if (needed * 8 > capacity) {
        const clusters = l1.length / this.cs;
        const at = this.allocate(clusters);
        if (this.l1Size > 0) this.pendingFree.push({ start: this.l1Offset, length: capacity });
        this.l1Offset = at;
      }
      this.l1 = l1.subarray(0, needed * 8);
      this.l1Size = needed;
      this.l1Dirty = true;
    }
    this.virtualSize = size;
    this.headerDirty = true;
    // A longer backing file must not show through the new tail.
    if (this.backing && this.backing.size > oldSize) this.discard(oldSize, Math.min(this.backing.size, size) - oldSize);
    this.flush();
  }

  /**
   * Drops everything past `size` (qemu-img resize --shrink): the rollback of a commit that grew the
   * image. Clusters wholly past the end become unallocated (their space is freed), the kept part of
   * the last cluster is unchanged and its tail zeroed, so a later grow reads zeros there.
   */
  private shrink(size: number): void {
    const tail = size % this.cs;
    if (tail !== 0) this.discard(size, Math.min(this.cs - tail, this.virtualSize - size));
    const last = Math.ceil(this.virtualSize / this.cs);
    for (let cluster = Math.ceil(size / this.cs); cluster < last; cluster++) {
      const e = this.entry(cluster);
      if (e.kind === 'unallocated') continue;
      this.setEntry(cluster, 0);
      this.release(e);
    }
    this.virtualSize = size;
    this.headerDirty = true;
    this.flush();
  }

  // ---- flush ----------------------------------------------------------------------------------

  flush(): void {
    if (this.readOnly || this.fd === undefined) return;
    const wroteRefs = this.writeRefs();
    if (wroteRefs) this.barrier();
    let wroteL2 = false;
    for (const [off, table] of this.l2Cache) {
      if (!table.dirty) continue;
      this.metadataWrite(table.bytes, off);
      table.dirty = false;
      wroteL2 = true;
    }
    if (wroteL2) this.barrier();
    if (this.l1Dirty || this.headerDirty) {
      if (this.l1Dirty) {
        const padded = new Uint8Array(Math.ceil(this.l1.length / this.cs) * this.cs);
        padded.set(this.l1);
        this.metadataWrite(padded, this.l1Offset);
        if (this.headerDirty) this.barrier();
      }
      if (this.headerDirty) this.writeHeader();
      this.l1Dirty = false;
      this.headerDirty = false;
      this.barrier();
    }
    if (this.pendingFree.length > 0) {
      const frees = this.pendingFree;
      this.pendingFree = [];
      for (const { start, length } of frees) {
        for (let c = Math.floor(start / this.cs); c <= Math.floor((start + length - 1) / this.cs); c++) {
          const ref = this.getRef(c);
          if (ref === 0) throw corrupt(`cluster ${c} is freed twice`, c * this.cs);
          this.setRef(c, ref - 1);
        }
      }
      if (this.writeRefs()) this.barrier();
    }
  }

  /** An ordering barrier of flush(): fsync, except on a scratch image (see Qcow2OpenOptions.scratch). */
  private barrier(): void {
    if (!this.scratch) syncHost(this.descriptor(), this.path);
  }

  private writeRefs(): boolean {
    let wrote = false;
    for (const [off, block] of this.refCache) {
      if (!block.dirty) continue;
      this.metadataWrite(block.bytes, off, true);
      block.dirty = false;
      wrote = true;
    }
    if (this.refTableDirty && this.refTable) {
      this.metadataWrite(this.refTable, this.refTableOffset);
      this.refTableDirty = false;
      wrote = true;
    }
    return wrote;
  }

  private writeHeader(): void {
    const h = this.header;
    const bytes = encodeQcow2Header({
      version: h.version,
      clusterBits: this.cb,
      size: this.virtualSize,
      l1Size: this.l1Size,
      l1TableOffset: this.l1Offset,
      refcountTableOffset: this.refTableOffset,
      refcountTableClusters: this.refTableClusters,
      incompatibleFeatures: h.incompatibleFeatures,
      compatibleFeatures: h.compatibleFeatures,
      autoclearFeatures: h.autoclearFeatures,
      compressionType: h.compressionType,
      backingFile: h.backingFile,
      backingFormat: h.backingFormat,
      otherExtensions: h.otherExtensions,
    });
    if (h.refcountOrder !== 4 && h.version === 3) new DataView(bytes.buffer).setUint32(96, h.refcountOrder);
    this.metadataWrite(bytes, 0);
  }

  // ---- undo point -----------------------------------------------------------------------------

  /**
   * Makes everything durable (flush), then remembers the file as it is now, so that
   * {@link rollBackToUndoPoint} can return its metadata and length there: the in-process rollback
   * of a failed commit, which would otherwise leave the clusters the commit appended in the file
   * (leaked ones too, when a write failed between a cluster's refcount and its L2 entry). Data
   * written in place into clusters of the old file is not kept: the commit's record restores it.
   */
  markUndoPoint(): void {
    this.flush();
    this.undo = {
      fileSize: this.fileSize,
      end: this.end,
      header: this.header,
      virtualSize: this.virtualSize,
      l1: this.l1.slice(),
      l1Size: this.l1Size,
      l1Offset: this.l1Offset,
      l2Offsets: [...this.l2Offsets],
      refTableOffset: this.refTableOffset,
      refTableClusters: this.refTableClusters,
      touched: this.touched,
      compressedCursor: this.compressedCursor,
      before: new Map(),
    };
  }

  /** Forgets the undo point (the commit completed). */
  dropUndoPoint(): void {
    this.undo = undefined;
  }

  /**
   * Returns the file's metadata and length to {@link markUndoPoint}'s moment, discarding every
   * change since that is not yet written. In the order that keeps the file consistent at each
   * barrier (a kill leaves at most unreferenced clusters, never a referenced one with refcount 0):
   * the refcount blocks written since first hold the larger of their old and current counts, then
   * the header, L1, L2 and refcount tables get their old bytes back, then the refcount blocks,
   * and only then is the file truncated to its old length (the appended clusters are returned to
   * the host). It only overwrites clusters the file already had: it needs no space.
   */
  rollBackToUndoPoint(): void {
    const undo = this.undo;
    if (!undo) throw new DiskwrightError('E_INVALID_ARGUMENT', `${this.path}: no undo point to roll back to`, { path: this.path });
    this.undo = undefined;
    const refcounts = [...undo.before].filter(([, saved]) => saved.refcounts);
    const others = [...undo.before].filter(([, saved]) => !saved.refcounts);
    const current = new Uint8Array(this.cs);
    for (const [c, saved] of refcounts) {
      this.hostRead(current, c * this.cs);
      for (let i = 0; i < this.refPerBlock; i++) {
        const old = readRefEntry(saved.bytes, i, this.refBits);
        if (old > readRefEntry(current, i, this.refBits)) writeRefEntry(current, i, this.refBits, old);
      }
      this.hostWrite(current, c * this.cs);
    }
    if (refcounts.length > 0) this.barrier();
    for (const [c, saved] of others) this.hostWrite(saved.bytes, c * this.cs);
    if (others.length > 0) this.barrier();
    for (const [c, saved] of refcounts) this.hostWrite(saved.bytes, c * this.cs);
    if (refcounts.length > 0) this.barrier();
    if (fstatSync(this.descriptor()).size > undo.fileSize) {
      truncateHost(this.descriptor(), undo.fileSize, this.path);
      this.barrier();
    }
    this.fileSize = undo.fileSize;
    this.end = undo.end;
    this.header = undo.header;
    this.virtualSize = undo.virtualSize;
    this.l1 = undo.l1;
    this.l1Size = undo.l1Size;
    this.l1Offset = undo.l1Offset;
    this.l2Offsets.clear();
    for (const off of undo.l2Offsets) this.l2Offsets.add(off);
    this.refTable = undefined;
    this.refTableOffset = undo.refTableOffset;
    this.refTableClusters = undo.refTableClusters;
    this.touched = undo.touched;
    this.compressedCursor = undo.compressedCursor;
    this.l2Cache.clear();
    this.refCache.clear();
    this.l1Dirty = false;
    this.headerDirty = false;
    this.refTableDirty = false;
    this.pendingFree = [];
    this.lastInflated = undefined;
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
      this.backing?.close();
    }
  }
}

function factsOf(h: Qcow2Header): Qcow2Facts {
  return {
    version: h.version,
    compat: h.version === 2 ? '0.10' : '1.1',
    clusterSize: h.clusterSize,
    refcountBits: 2 ** h.refcountOrder,
    lazyRefcounts: (h.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n,
    dirty: (h.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n,
    corrupt: (h.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n,
    extendedL2: (h.incompatibleFeatures & INCOMPAT_EXTL2) !== 0n,
    compressionType: h.compressionType,
    backingFile: h.backingFile,
    backingFormat: h.backingFormat,
    snapshots: h.nbSnapshots,
  };
}

function assertWritable(h: Qcow2Header, path: string): void {
  const refuse = (what: string, hint: string): never => {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${path}: ${what}; diskwright opens it read-only only`, { path, hint });
  };
  if (h.incompatibleFeatures & INCOMPAT_CORRUPT) refuse('the image is marked corrupt', 'repair it with `qemu-img check -r all`');
  if (h.incompatibleFeatures & INCOMPAT_DIRTY) refuse('the image is dirty (lazy refcounts were not written back)', 'repair it with `qemu-img check -r all`');
  if (h.incompatibleFeatures & INCOMPAT_EXTL2) refuse('the image uses extended L2 entries (subclusters)', 'qemu-img convert -O qcow2 IMG plain.qcow2');
  if (h.nbSnapshots > 0) refuse(`the image has ${h.nbSnapshots} internal snapshots`, 'qemu-img convert -O qcow2 IMG flat.qcow2');
}

/** QEMU's rule: a relative backing name is relative to the directory of the image naming it. */
export function resolveBacking(imagePath: string, name: string): string {
  if (name.startsWith('/')) return name;
  const slash = imagePath.lastIndexOf('/');
  return slash < 0 ? name : `${imagePath.slice(0, slash + 1)}${name}`;
}

function readRefEntry(block: Uint8Array, index: number, bits: number): number {
  if (bits >= 8) {
    const bytes = bits / 8;
    let value = 0;
    for (let i = 0; i < bytes; i++) value = value * 256 + block[index * bytes + i]!;
    return value;
  }
  const perByte = 8 / bits;
  const byte = block[Math.floor(index / perByte)]!;
  return (byte >> ((index % perByte) * bits)) & ((1 << bits) - 1);
}

function writeRefEntry(block: Uint8Array, index: number, bits: number, value: number): void {
  if (bits >= 8) {
    const bytes = bits / 8;
    let v = value;
    for (let i = bytes - 1; i >= 0; i--) {
      block[index * bytes + i] = v % 256;
      v = Math.floor(v / 256);
    }
    return;
  }
  const perByte = 8 / bits;
  const at = Math.floor(index / perByte);
  const shift = (index % perByte) * bits;
  const mask = ((1 << bits) - 1) << shift;
  block[at] = (block[at]! & ~mask) | ((value << shift) & mask);
}
