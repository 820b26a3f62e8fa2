import { DiskwrightError, LimitError } from '../../errors.js';
import { clusterBitsOf } from './create.js';
import { encodeQcow2Header } from './header.js';
import { MAX_HOST_OFFSET, MAX_L1_BYTES, MAX_REFTABLE_BYTES } from './limits.js';
import { OutputFile } from './output-file.js';

/** L1/L2 "copied" flag (refcount exactly 1), qcow2.txt bit 63. */
const COPIED = 1n << 63n;
/** L2 "compressed" flag, qcow2.txt bit 62. */
const COMPRESSED = 1n << 62n;

/**
 * A new qcow2 image written front to back in one pass, for `convert`: guest clusters arrive in
 * ascending order and are appended (data runs with one pwrite each, compressed clusters packed
 * byte-wise as QEMU packs them); each L2 table is appended once the writer has passed its range;
 * the L1 table, refcount blocks, refcount table and the header are written once, at the end.
 * Nothing is read back and no refcount is updated per cluster: every host cluster is referenced
 * exactly once except the ones compressed clusters share, which are counted as they are packed.
 *
 * Writes are asynchronous (libuv pool) so the caller's next reads overlap them; a promise
 * settles when its buffer may be reused. The file is a temp file that the caller fsyncs and
 * renames (src/io/atomic.ts): until {@link finish} it has no valid header, so it is never
 * mistaken for an image.
 */
export class Qcow2StreamWriter {
  readonly clusterSize: number;
  private readonly cb: number;
  private readonly l2Entries: number;
  private readonly l1: Uint8Array;
  private readonly file: OutputFile;
  private finished = false;
  /** The L2 table being filled, and which L1 entry it belongs to (-1: none). */
  private l2: Uint8Array;
  private l2Index = -1;
  /** Next free byte of the file (cluster-aligned except right after compressed data). */
  private end: number;
  /** Host clusters shared by compressed clusters: their refcounts (every other one has 1). */
  private readonly shared = new Map<number, number>();
  private nextGuest = 0;
  private readonly pending = new Set<Promise<unknown>>();
  private failure: unknown;

  private constructor(readonly path: string, file: OutputFile, readonly size: number, clusterSize: number) {
    this.file = file;
    this.clusterSize = clusterSize;
    this.cb = Math.log2(clusterSize);
    this.l2Entries = clusterSize / 8;
    const l1Entries = Math.ceil(size / (clusterSize * this.l2Entries));
    if (l1Entries * 8 > MAX_L1_BYTES) throw new LimitError(`qcow2: ${size} bytes need an L1 table larger than ${MAX_L1_BYTES} bytes`, { hint: 'use a larger --cluster-size' });
    this.l1 = new Uint8Array(l1Entries * 8);
    this.l2 = new Uint8Array(clusterSize);
    this.end = clusterSize; // cluster 0: the header, written last
  }

  /** Creates `path` (which must not exist) for an image of `size` bytes (a multiple of 512). */
  static create(path: string, options: { readonly size: number; readonly clusterSize: number }): Qcow2StreamWriter {
    clusterBitsOf(options.clusterSize);
    if (!Number.isSafeInteger(options.size) || options.size < 0 || options.size % 512 !== 0) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `the input size ${options.size} is not a multiple of 512 bytes`, { path, hint: 'qcow2 sizes are whole sectors' });
    }
    return new Qcow2StreamWriter(path, OutputFile.create(path), options.size, options.clusterSize);
  }

  /**
   * Stores `bytes` as standard clusters from guest cluster `cluster` on, in one write. `bytes` is
   * whole clusters, except at the end of the disk. Resolves when `bytes` may be reused.
   */
  writeClusters(cluster: number, bytes: Uint8Array): Promise<void> {
    const count = Math.ceil(bytes.length / this.clusterSize);
    this.claim(cluster, count);
    this.alignEnd();
    const host = this.end;
    this.end = host + count * this.clusterSize;
    this.checkEnd();
    const written = this.track(this.file.write(bytes, host));
    // Entries after the data: an L2 table completed here is appended behind the run.
    for (let i = 0; i < count; i++) this.setEntry(cluster + i, BigInt(host + i * this.clusterSize) | COPIED);
    return written;
  }

  /**
   * Stores guest cluster `cluster` as raw-deflate bytes (shorter than a cluster), right after the
   * previous compressed cluster: it may start inside a cluster and run into the next one, which
   * is how `qemu-img convert -c` packs them. Resolves when `compressed` may be reused.
   */
  writeCompressed(cluster: number, compressed: Uint8Array): Promise<void> {
    if (compressed.length === 0 || compressed.length >= this.clusterSize) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `a compressed cluster must be 1 to ${this.clusterSize - 1} bytes, got ${compressed.length}`, { path: this.path });
    }
    this.claim(cluster, 1);
    const start = this.end;
    const last = start + compressed.length - 1;
    // qcow2.txt: bits 0..x-1 host offset, bits x..61 the number of 512-byte sectors after the first.
    const sectors = Math.floor(last / 512) - Math.floor(start / 512);
    // The clusters `qemu-img check` counts for this entry: from its first to its last sector.
    const spanEnd = (Math.floor(start / 512) + sectors + 1) * 512;
    for (let c = Math.floor(start / this.clusterSize); c <= Math.floor((spanEnd - 1) / this.clusterSize); c++) this.shared.set(c, (this.shared.get(c) ?? 0) + 1);
    this.end = last + 1;
    this.checkEnd();
    const written = this.track(this.file.write(compressed, start));
    this.setEntry(cluster, COMPRESSED | (BigInt(sectors) << BigInt(62 - (this.cb - 8))) | BigInt(start));
    return written;
  }

  /**
   * Writes the remaining L2 table, the L1 table, the refcounts and the header, and closes the
   * file (not synced: the caller's atomic rename does that). Waits for every pending write.
   */
  async finish(): Promise<void> {
    this.flushL2();
    this.alignEnd();
    const cs = this.clusterSize;
    const l1Offset = this.end;
    const l1Bytes = new Uint8Array(Math.ceil(this.l1.length / cs) * cs);
    l1Bytes.set(this.l1);
    this.end += l1Bytes.length;
    // Refcount blocks and table at the end, covering every cluster including themselves.
    const refPerBlock = (cs * 8) / 16;
    const before = this.end / cs;
    let blocks = 0;
    let tableClusters = 0;
    for (;;) {
      const total = before + blocks + tableClusters;
      const b = Math.ceil(total / refPerBlock);
      const t = Math.max(1, Math.ceil((b * 8) / cs));
      if (b === blocks && t === tableClusters) break;
      blocks = b;
      tableClusters = t;
    }
    if (tableClusters * cs > MAX_REFTABLE_BYTES) throw new LimitError(`qcow2: the refcount table would exceed ${MAX_REFTABLE_BYTES} bytes`, { path: this.path, hint: 'use a larger --cluster-size' });
    const total = before + blocks + tableClusters;
    const refBlocks = new Uint8Array(blocks * cs);
    const rb = new DataView(refBlocks.buffer);
    for (let c = 0; c < total; c++) rb.setUint16(c * 2, this.shared.get(c) ?? 1);
    const refTable = new Uint8Array(tableClusters * cs);
    const rt = new DataView(refTable.buffer);
    for (let b = 0; b < blocks; b++) rt.setBigUint64(b * 8, BigInt((before + b) * cs));
    const refTableOffset = (before + blocks) * cs;
    this.end = total * cs;
    this.checkEnd();
    this.track(this.file.write(l1Bytes, l1Offset));
    this.track(this.file.write(refBlocks, before * cs));
    this.track(this.file.write(refTable, refTableOffset));
    await this.drain();
    await this.file.settle();
    const header = encodeQcow2Header({
      version: 3, clusterBits: this.cb, size: this.size, l1Size: this.l1.length / 8, l1TableOffset: l1Offset,
      refcountTableOffset: refTableOffset, refcountTableClusters: tableClusters,
    });
    // The header last: before it, the file is not a qcow2 image at all.
    await this.file.write(header, 0);
    this.finished = true;
    await this.close();
  }

  /** Waits for pending writes and closes the file (idempotent; after a failure too). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.file.close();
  }

  /** Host bytes written so far (data and tables). */
  get hostBytes(): number {
    return this.end;
  }

  private claim(cluster: number, count: number): void {
    if (this.failure) throw this.failure;
    if (this.finished) throw new DiskwrightError('E_IO', `${this.path}: written after finish`, { path: this.path });
    if (!Number.isSafeInteger(cluster) || cluster < this.nextGuest || (cluster + count) * this.clusterSize >= this.size + this.clusterSize) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `qcow2 stream: guest clusters ${cluster}+${count} are out of order or past the end`, { path: this.path });
    }
    this.nextGuest = cluster + count;
  }

  /** Standard clusters and tables start on a cluster boundary; compressed data need not. */
  private alignEnd(): void {
    this.end = Math.ceil(this.end / this.clusterSize) * this.clusterSize;
  }

  private setEntry(cluster: number, value: bigint): void {
    const index = Math.floor(cluster / this.l2Entries);
    if (index !== this.l2Index) {
      this.flushL2();
      this.l2Index = index;
    }
    new DataView(this.l2.buffer).setBigUint64((cluster % this.l2Entries) * 8, value);
  }

  /** Appends the filled L2 table and points its L1 entry at it. */
  private flushL2(): void {
    if (this.l2Index < 0) return;
    this.alignEnd();
    const at = this.end;
    this.end += this.clusterSize;
    this.checkEnd();
    new DataView(this.l1.buffer).setBigUint64(this.l2Index * 8, BigInt(at) | COPIED);
    const table = this.l2;
    this.track(this.file.write(table, at));
    this.l2 = new Uint8Array(this.clusterSize);
    this.l2Index = -1;
  }

  private checkEnd(): void {
    if (this.end > MAX_HOST_OFFSET) throw new LimitError('qcow2: the image file would exceed 64 PiB', { path: this.path });
  }

  /** Keeps a write in the pending set; its failure also fails every later call. */
  private track(promise: Promise<void>): Promise<void> {
    const tracked = promise.catch((error: unknown) => {
      this.failure ??= error;
      throw error;
    });
    this.pending.add(tracked);
    void tracked.then(
      () => this.pending.delete(tracked),
      () => this.pending.delete(tracked),
    );
    return tracked;
  }

  private async drain(): Promise<void> {
    const results = await Promise.allSettled([...this.pending]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (this.failure) throw this.failure;
  }
}
