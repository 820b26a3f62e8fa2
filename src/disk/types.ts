/**
 * The block-layer contract (issue 9): one `Disk` under every image operation — partition tables,
 * extract/copy, the ext editor, and the WASM e2fsprogs tools (through the worker's disk hook).
 * Formats (raw file, qcow2), views (partition window) and the copy-on-write overlay all implement
 * it, and a backing chain is just a Disk opening another Disk (the shape of QEMU's block layer).
 *
 * The interface is synchronous on purpose: the WASM tools call it from inside a synchronous
 * syscall, and Node's positional sync I/O is what they would use anyway. Bulk copies that want
 * several reads in flight use `allocation()` to skip what is not there, and read large spans.
 */

/** How a byte range of a Disk is stored (qemu-img map's `data` / `zero`). */
export type AllocationState =
  /** Stored in this layer (or, for a raw file, a data extent). */
  | 'data'
  /** Known to read as zeros (a hole, a qcow2 zero cluster, a discarded range). */
  | 'zero'
  /** Not stored in this layer: reads come from the backing Disk (qcow2 overlays only). */
  | 'backing';

/** A run of bytes with one allocation state, as consecutive `{position, length}` extents. */
export interface AllocationExtent {
  readonly position: number;
  readonly length: number;
  readonly state: AllocationState;
}

/** The format a Disk was opened as; `qemu-img info`'s `format` field. */
export type DiskFormat = 'raw' | 'qcow2';

export interface Disk {
  /** Virtual size in bytes: what a guest sees. */
  readonly size: number;
  readonly readOnly: boolean;
  readonly format: DiskFormat;
  /** Host path of the file this Disk stores its own bytes in (for messages, locks, sidecars). */
  readonly path: string;
  /** The Disk this one reads unallocated ranges from, if any (qcow2 backing file). */
  readonly backing?: Disk;

  /**
   * Fills `buffer` with the bytes at `position`. Reading past `size` is an E_OUT_OF_RANGE error,
   * never a short read: formats decide what unallocated ranges read as (zeros or backing).
   */
  read(buffer: Uint8Array, position: number): void;
  /** Writes all of `buffer` at `position` (E_OUT_OF_RANGE past `size`; E_IO on host errors). */
  write(buffer: Uint8Array, position: number): void;
  /** Makes every completed write durable (fdatasync of the files this Disk writes). */
  flush(): void;
  /**
   * Optional hint: start writing completed writes of the range to storage now, without waiting
   * (a raw file: sync_file_range), so that the next flush() has less left to do. Makes nothing
   * durable by itself.
   */
  startWriteback?(position: number, length: number): void;
  /**
   * Optional: {@link write} for bulk file data, the way this format writes it fastest (a raw file:
   * O_DIRECT for whole aligned pages). Same result and durability contract as write.
   */
  writeBulk?(buffer: Uint8Array, position: number): void;
  /** The range reads as zeros afterwards; storage is released where the format can. */
  discard(position: number, length: number): void;
  /**
   * Allocation of `[position, position + length)` in order, covering it exactly. A format that
   * cannot tell reports everything as 'data'.
   */
  allocation(position: number, length: number): AllocationExtent[];
  /** Changes the virtual size (grow; shrink only where the format supports it). */
  resize?(size: number): void;
  /** Idempotent. Closes this layer and the backing layers it opened. */
  close(): void;
}
