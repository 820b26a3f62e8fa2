import { closeSync } from 'node:fs';
import { DiskwrightError, InvalidArgumentError } from '../../errors.js';
import { COMPAT_LAZY_REFCOUNTS, encodeQcow2Header } from './header.js';
import { Qcow2Disk } from './image.js';
import { MAX_CLUSTER_BITS, MIN_CLUSTER_BITS } from './limits.js';
import { openHost, syncHost, writeFully } from './raw-file.js';

/** qemu-img's default cluster size. */
export const DEFAULT_CLUSTER_SIZE = 65536;

export interface CreateQcow2Options {
  /** Virtual size in bytes (rounded up to 512, as qemu-img does). */
  readonly size: number;
  /** 512 B to 2 MiB, a power of two (default 64 KiB). */
  readonly clusterSize?: number;
  /** '1.1' (version 3, default) or '0.10' (version 2). */
  readonly compat?: '0.10' | '1.1';
  readonly lazyRefcounts?: boolean;
  /** Backing file name as it is stored (relative names are relative to the image's directory). */
  readonly backingFile?: string;
  readonly backingFormat?: 'raw' | 'qcow2';
  /**
   * `path` is a private temp file the caller fsyncs before renaming it into place (a thin
   * instance): no fsyncs while it is laid out (Qcow2OpenOptions.scratch).
   */
  readonly scratch?: boolean;
}

/** Checks a cluster size and returns its cluster_bits. */
export function clusterBitsOf(clusterSize: number): number {
  const bits = Math.log2(clusterSize);
  if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw new InvalidArgumentError(`Expected \`cluster-size\` to be a power of two from 512 to 2M, got \`${clusterSize}\``, { actual: clusterSize });
  }
  return bits;
}

/**
 * Writes a new, empty qcow2 image at `path` (which must not exist; callers make it atomic with a
 * temp path). Layout as qemu-img makes it: header, refcount table, one refcount block, then the
 * L1 table, grown through the same allocator that later writes use.
 */
export function createQcow2(path: string, options: CreateQcow2Options): void {
  const bits = clusterBitsOf(options.clusterSize ?? DEFAULT_CLUSTER_SIZE);
  const cs = 2 ** bits;
  if (!Number.isSafeInteger(options.size) || options.size < 0) throw new InvalidArgumentError(`Expected \`size\` to be a non-negative integer, got \`${options.size}\``);
  if (options.backingFile !== undefined && options.backingFormat === undefined) {
    throw new InvalidArgumentError('a backing file needs its format (raw or qcow2)', { hint: 'pass --backing-format raw|qcow2' });
  }
  const size = Math.ceil(options.size / 512) * 512;
  const version = options.compat === '0.10' ? 2 : 3;
  if (version === 2 && options.lazyRefcounts) throw new InvalidArgumentError('lazy refcounts need compat 1.1');
  const header = encodeQcow2Header({
    version, clusterBits: bits, size: 0, l1Size: 0, l1TableOffset: 0, refcountTableOffset: cs, refcountTableClusters: 1,
    compatibleFeatures: options.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n,
    backingFile: options.backingFile, backingFormat: options.backingFormat,
  });
  const table = new Uint8Array(cs);
  new DataView(table.buffer).setBigUint64(0, BigInt(2 * cs));
  const block = new Uint8Array(cs);
  for (let c = 0; c < 3; c++) block[c * 2 + 1] = 1; // 16-bit refcounts of clusters 0, 1, 2
  const fd = openHost(path, 'wx');
  try {
    writeFully(fd, header, 0, path);
    writeFully(fd, table, cs, path);
    writeFully(fd, block, 2 * cs, path);
    if (options.scratch !== true) syncHost(fd, path);
  } finally {
    closeSync(fd);
  }
  if (size === 0) return;
  // Grow to the requested size without opening the backing file (nothing reads it here).
  const disk = Qcow2Disk.open(path, { readOnly: false, openBacking: () => placeholderBacking(path), ...(options.scratch === true ? { scratch: true } : {}) });
  try {
    disk.resize(size);
  } finally {
    disk.close();
  }
}

/** Stands in for the backing file while a new overlay's L1 is laid out; never read. */
function placeholderBacking(path: string) {
  const refuse = (): never => {
    throw new DiskwrightError('E_IO', `${path}: the backing file is not open while the image is created`, { path });
  };
  return { size: 0, readOnly: true, format: 'raw' as const, path, read: refuse, write: refuse, flush() {}, discard: refuse, allocation: refuse, close() {} };
}
