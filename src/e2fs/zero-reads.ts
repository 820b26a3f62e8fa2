/**
 * Reads of ranges a read-only Disk stack knows to be zeros, answered without reading them.
 *
 * e2fsck -fn of a thin instance (an ext3 without uninit_bg) reads every inode table: ~122 MiB of
 * the seed template's, nearly all of it holes of the raw template file behind two qcow2 layers.
 * Each 32 KiB read of a hole still costs a pread that copies zero pages — and when the page cache
 * was dropped, the kernel first allocates and zero-fills those pages: 0.25–0.43 s cold, 30–60 ms
 * warm on the seed (measured on the shared 2-core machine). The allocation of the stack (qcow2
 * L2 entries, then lseek SEEK_DATA/SEEK_HOLE on the raw file at the bottom) says which ranges are
 * holes; a read that falls entirely in one is filled with zeros here instead.
 *
 * Only for a Disk served read-only (e2fsck -n, dumpe2fs): nothing in this process writes it while
 * the map is in use, so a range that was zero when the map was taken still is (a writer in another
 * process could fill a hole meanwhile; the read would then have raced it all the same).
 */
import { DiskwrightError } from '../errors.js';
import type { AllocationExtent, Disk } from '../disk/index.js';

/** The allocation is asked for one aligned window at a time, when a read first falls in it. */
export const ZERO_MAP_WINDOW = 2 * 1024 * 1024;

/**
 * Reads shorter than this are always read: e2fsck's single-block reads (indirect blocks,
 * directories, bitmaps) are data, and mapping each one's window first cost more than it saved
 * (~550 window maps per final check of a thin instance, ~10 ms; only the inode-table reads, 8
 * blocks at a time, fall in holes).
 */
export const MIN_SKIPPED_READ = 8192;

/** Deepest backing chain the map follows (deeper layers are simply read). */
const MAX_DEPTH = 16;

/**
 * The ranges of `[position, position + length)` that read as zeros through `disk` and the
 * Disks it is backed by, in order: a 'zero' extent of any layer, or a 'backing' extent whose
 * backing Disk reports zeros there. Ranges a layer cannot vouch for (data, past the end of a
 * smaller backing file, a chain deeper than {@link MAX_DEPTH}) are left out: they are read.
 */
export function zeroRanges(disk: Disk, position: number, length: number, depth = 0): AllocationExtent[] {
  const out: AllocationExtent[] = [];
  const push = (at: number, n: number): void => {
    const last = out[out.length - 1];
    if (last && last.position + last.length === at) out[out.length - 1] = { position: last.position, length: last.length + n, state: 'zero' };
    else out.push({ position: at, length: n, state: 'zero' });
  };
  for (const extent of disk.allocation(position, length)) {
    if (extent.state === 'zero') push(extent.position, extent.length);
    else if (extent.state === 'backing' && disk.backing !== undefined && depth < MAX_DEPTH) {
      const inside = Math.min(extent.position + extent.length, disk.backing.size) - extent.position;
      if (inside > 0) for (const z of zeroRanges(disk.backing, extent.position, inside, depth + 1)) push(z.position, z.length);
    }
  }
  return out;
}

/**
 * A read-only view of `inner` whose reads of known-zero ranges ({@link zeroRanges}, taken per
 * {@link ZERO_MAP_WINDOW} on first use) are zero-filled without reaching the layers below.
 * Every other call goes to `inner` as it is.
 */
export class ZeroSkippingDisk implements Disk {
  private readonly windows = new Map<number, readonly AllocationExtent[]>();

  constructor(private readonly inner: Disk) {
    if (!inner.readOnly) throw new DiskwrightError('E_INVALID_ARGUMENT', `${inner.path}: known-zero reads are only skipped on a read-only Disk`, { path: inner.path });
  }

  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return true;
  }
  get format(): Disk['format'] {
    return this.inner.format;
  }
  get path(): string {
    return this.inner.path;
  }
  get backing(): Disk | undefined {
    return this.inner.backing;
  }

  read(buffer: Uint8Array, position: number): void {
    if (this.readsAsZeros(position, buffer.length)) buffer.fill(0);
    else this.inner.read(buffer, position);
  }

  write(buffer: Uint8Array, position: number): void {
    this.inner.write(buffer, position);
  }
  flush(): void {
    this.inner.flush();
  }
  discard(position: number, length: number): void {
    this.inner.discard(position, length);
  }
  allocation(position: number, length: number): AllocationExtent[] {
    return this.inner.allocation(position, length);
  }
  close(): void {
    this.inner.close();
  }

  /** True when the whole range lies in one known-zero extent of its window. */
  private readsAsZeros(position: number, length: number): boolean {
    // Out-of-range reads go to `inner`, which reports them; a read across windows is just read.
    if (length < MIN_SKIPPED_READ || !Number.isSafeInteger(position) || position < 0 || position + length > this.inner.size) return false;
    const window = Math.floor(position / ZERO_MAP_WINDOW);
    if (Math.floor((position + length - 1) / ZERO_MAP_WINDOW) !== window) return false;
    for (const zero of this.zerosOf(window)) {
      if (zero.position <= position && position + length <= zero.position + zero.length) return true;
    }
    return false;
  }

  private zerosOf(window: number): readonly AllocationExtent[] {
    let zeros = this.windows.get(window);
    if (zeros === undefined) {
      const start = window * ZERO_MAP_WINDOW;
      zeros = zeroRanges(this.inner, start, Math.min(ZERO_MAP_WINDOW, this.inner.size - start));
      this.windows.set(window, zeros);
    }
    return zeros;
  }
}
