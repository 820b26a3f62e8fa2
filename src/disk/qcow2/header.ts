import { BadSignatureError, DiskwrightError, LimitError, TruncatedError } from '../../errors.js';
import { MAX_BACKING_NAME, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS } from './limits.js';

/**
 * The qcow2 header (QEMU docs/interop/qcow2.txt, "Header"): pure parse and encode over the first
 * cluster. Every number is big-endian; every field read from the file is checked here against a
 * named limit before the image code uses it as a size, offset or loop bound.
 */

/** "QFI\xfb". */
export const QCOW2_MAGIC = 0x514649fb;

/** Byte offsets of the header fields (qcow2.txt, "Header"). */
export const H = {
  magic: 0,
  version: 4,
  backingFileOffset: 8,
  backingFileSize: 16,
  clusterBits: 20,
  size: 24,
  cryptMethod: 32,
  l1Size: 36,
  l1TableOffset: 40,
  refcountTableOffset: 48,
  refcountTableClusters: 56,
  nbSnapshots: 60,
  snapshotsOffset: 64,
  // version 3
  incompatibleFeatures: 72,
  compatibleFeatures: 80,
  autoclearFeatures: 88,
  refcountOrder: 96,
  headerLength: 100,
  compressionType: 104,
} as const;

export const V2_HEADER_LENGTH = 72;
/** What diskwright writes for version 3: through compression_type, padded to 8. */
export const V3_HEADER_LENGTH = 112;

/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
/** Compatible feature bits. */
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

/** Header extension types. */
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

export type CompressionType = 'zlib' | 'zstd';

export interface Qcow2Header {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  readonly size: number;
  readonly l1Size: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  readonly nbSnapshots: number;
  readonly snapshotsOffset: number;
  readonly incompatibleFeatures: bigint;
  readonly compatibleFeatures: bigint;
  readonly autoclearFeatures: bigint;
  readonly refcountOrder: number;
  readonly headerLength: number;
  readonly compressionType: CompressionType;
  /** The backing file name exactly as stored (relative names are relative to the image's directory). */
  readonly backingFile: string | undefined;
  /** The backing format header extension, when present. */
  readonly backingFormat: string | undefined;
  /** Where the header extensions end (the backing name may follow). */
  readonly extensionsEnd: number;
  /** Header extensions diskwright does not interpret, kept verbatim for rewrites. */
  readonly otherExtensions: readonly { readonly type: number; readonly data: Uint8Array }[];
}

/** True when `bytes` starts with the qcow2 magic. The only probe diskwright uses. */
export function hasQcow2Magic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x51 && bytes[1] === 0x46 && bytes[2] === 0x49 && bytes[3] === 0xfb;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A u64 field as a safe JS number, or an E_LIMIT error naming the field. */
function u64Number(dv: DataView, offset: number, what: string): number {
  const value = dv.getBigUint64(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new LimitError(`qcow2 header: ${what} ${value} is larger than diskwright can address`, { offset, actual: value });
  }
  return Number(value);
}

function bad(message: string, offset: number, actual?: unknown): DiskwrightError {
  return new DiskwrightError('E_OUT_OF_RANGE', `qcow2 header: ${message}`, { offset, actual, hint: 'the image is damaged or not a qcow2 image; `qemu-img check` may tell more' });
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Parses the header, its extensions and the backing file name from the first bytes of the file
 * (at least one cluster, or the whole file when it is shorter). `fileSize` bounds every offset.
 */
export function parseQcow2Header(bytes: Uint8Array, fileSize: number): Qcow2Header {
  if (bytes.length < V2_HEADER_LENGTH) throw new TruncatedError(`qcow2 header: need ${V2_HEADER_LENGTH} bytes, have ${bytes.length}`);
  const dv = view(bytes);
  if (dv.getUint32(H.magic) !== QCOW2_MAGIC) throw new BadSignatureError('not a qcow2 image (no QFI\\xfb magic)', { offset: 0 });
  const version = dv.getUint32(H.version);
  if (version !== 2 && version !== 3) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `qcow2 version ${version} is not supported (only 2 and 3)`, { offset: H.version, actual: version });
  }
  const clusterBits = dv.getUint32(H.clusterBits);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new LimitError(`qcow2 header: cluster_bits ${clusterBits} is outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS} (512 B to 2 MiB)`, { offset: H.clusterBits, actual: clusterBits });
  }
  const clusterSize = 2 ** clusterBits;
  const size = u64Number(dv, H.size, 'virtual size');
  const crypt = dv.getUint32(H.cryptMethod);
  if (crypt !== 0) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `encrypted qcow2 (crypt_method ${crypt}) is not supported`, { offset: H.cryptMethod, hint: 'decrypt it first: qemu-img convert --object secret,... -O qcow2' });
  }
  let incompatibleFeatures = 0n;
  let compatibleFeatures = 0n;
  let autoclearFeatures = 0n;
  let refcountOrder = 4;
  let headerLength = V2_HEADER_LENGTH;
  let compressionType: CompressionType = 'zlib';
  if (version === 3) {
    if (bytes.length < 104) throw new TruncatedError(`qcow2 v3 header: need 104 bytes, have ${bytes.length}`);
    incompatibleFeatures = dv.getBigUint64(H.incompatibleFeatures);
    compatibleFeatures = dv.getBigUint64(H.compatibleFeatures);
    autoclearFeatures = dv.getBigUint64(H.autoclearFeatures);
    refcountOrder = dv.getUint32(H.refcountOrder);
    headerLength = dv.getUint32(H.headerLength);
    if (headerLength < 104 || headerLength % 8 !== 0 || headerLength > Math.min(clusterSize, bytes.length)) {
      throw bad(`header_length ${headerLength} must be a multiple of 8 from 104 to the cluster size`, H.headerLength, headerLength);
    }
    if (refcountOrder > 6) throw bad(`refcount_order ${refcountOrder} exceeds 6`, H.refcountOrder, refcountOrder);
    const unknown = incompatibleFeatures & ~INCOMPAT_KNOWN;
    if (unknown !== 0n) {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `qcow2 has unknown incompatible features 0x${unknown.toString(16)}`, { offset: H.incompatibleFeatures, actual: unknown, hint: 'convert it with a newer qemu-img to a plain qcow2 or raw image' });
    }
    if (incompatibleFeatures & INCOMPAT_DATA_FILE) {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', 'qcow2 with an external data file is not supported', { offset: H.incompatibleFeatures, hint: 'qemu-img convert -O qcow2 IMG standalone.qcow2' });
    }
    const typeByte = headerLength > H.compressionType ? bytes[H.compressionType]! : 0;
    const typeBit = (incompatibleFeatures & INCOMPAT_COMPRESSION) !== 0n;
    if (typeBit !== (typeByte !== 0)) throw bad(`compression_type ${typeByte} disagrees with the compression type feature bit`, H.compressionType, typeByte);
    if (typeByte > 1) throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `qcow2 compression_type ${typeByte} is unknown (0 zlib, 1 zstd)`, { offset: H.compressionType });
    compressionType = typeByte === 1 ? 'zstd' : 'zlib';
    if ((incompatibleFeatures & INCOMPAT_EXTL2) && clusterBits < 14) throw bad(`extended L2 entries need clusters of at least 16 KiB, not ${clusterSize}`, H.clusterBits, clusterSize);
  }

  const l1Size = dv.getUint32(H.l1Size);
  const l1TableOffset = u64Number(dv, H.l1TableOffset, 'L1 table offset');
  const refcountTableOffset = u64Number(dv, H.refcountTableOffset, 'refcount table offset');
  const refcountTableClusters = dv.getUint32(H.refcountTableClusters);
  const nbSnapshots = dv.getUint32(H.nbSnapshots);
  const snapshotsOffset = u64Number(dv, H.snapshotsOffset, 'snapshot table offset');

  // Header extensions: a bounded walk inside the first cluster.
  let backingFormat: string | undefined;
  const otherExtensions: { type: number; data: Uint8Array }[] = [];
  const limit = Math.min(clusterSize, bytes.length);
  let at = headerLength;
  for (;;) {
    if (at + 8 > limit) {
      if (version === 2 && at >= limit) break; // v2 may have no end marker when the header fills the file
      throw bad(`header extensions run past the first cluster at ${at}`, at);
    }
    const type = dv.getUint32(at);
    const length = dv.getUint32(at + 4);
    if (type === EXT_END) {
      at += 8;
      break;
    }
    const padded = Math.ceil(length / 8) * 8;
    if (at + 8 + padded > limit) throw bad(`header extension 0x${type.toString(16)} of ${length} bytes runs past the first cluster`, at, length);
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === EXT_BACKING_FORMAT) backingFormat = decoder.decode(data);
    else if (type === EXT_DATA_FILE) {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', 'qcow2 with an external data file is not supported', { offset: at });
    } else otherExtensions.push({ type, data: data.slice() });
    at += 8 + padded;
  }
  const extensionsEnd = at;

  let backingFile: string | undefined;
  const backingOffset = u64Number(dv, H.backingFileOffset, 'backing file offset');
  if (backingOffset !== 0) {
    const backingSize = dv.getUint32(H.backingFileSize);
    if (backingSize === 0 || backingSize > MAX_BACKING_NAME) {
      throw new LimitError(`qcow2 header: backing file name of ${backingSize} bytes (limit ${MAX_BACKING_NAME})`, { offset: H.backingFileSize, actual: backingSize });
    }
    if (backingOffset + backingSize > limit) throw bad(`backing file name at ${backingOffset} runs past the first cluster`, H.backingFileOffset, backingOffset);
    backingFile = decoder.decode(bytes.subarray(backingOffset, backingOffset + backingSize));
    if (backingFile.includes('\0')) throw bad('backing file name contains a NUL byte', backingOffset);
  }

  const header: Qcow2Header = {
    version, clusterBits, clusterSize, size, l1Size, l1TableOffset, refcountTableOffset, refcountTableClusters, nbSnapshots,
    snapshotsOffset, incompatibleFeatures, compatibleFeatures, autoclearFeatures, refcountOrder, headerLength, compressionType,
    backingFile, backingFormat, extensionsEnd, otherExtensions,
  };
  checkTableOffsets(header, fileSize);
  return header;
}

function checkTableOffsets(h: Qcow2Header, fileSize: number): void {
  const cs = h.clusterSize;
  const aligned = (value: number, what: string, offset: number): void => {
    if (value % cs !== 0) throw bad(`${what} ${value} is not aligned to the cluster size ${cs}`, offset, value);
  };
  aligned(h.l1TableOffset, 'L1 table offset', H.l1TableOffset);
  aligned(h.refcountTableOffset, 'refcount table offset', H.refcountTableOffset);
  if (h.refcountTableClusters === 0) throw bad('the refcount table has no clusters', H.refcountTableClusters, 0);
  if (h.refcountTableOffset === 0) throw bad('the refcount table overlaps the header', H.refcountTableOffset, 0);
  const refEnd = h.refcountTableOffset + h.refcountTableClusters * cs;
  if (refEnd > fileSize) throw bad(`the refcount table (${h.refcountTableClusters} clusters at ${h.refcountTableOffset}) ends past the end of the file (${fileSize})`, H.refcountTableOffset, refEnd);
  if (h.l1Size > 0) {
    if (h.l1TableOffset === 0) throw bad('the L1 table overlaps the header', H.l1TableOffset, 0);
    const l1End = h.l1TableOffset + h.l1Size * 8;
    if (l1End > fileSize) throw bad(`the L1 table (${h.l1Size} entries at ${h.l1TableOffset}) ends past the end of the file (${fileSize})`, H.l1TableOffset, l1End);
    if (h.l1TableOffset < refEnd && h.refcountTableOffset < l1End) {
      throw new DiskwrightError('E_OVERLAP', `qcow2: the L1 table at ${h.l1TableOffset} overlaps the refcount table at ${h.refcountTableOffset}`, { offset: H.l1TableOffset, hint: 'the image is damaged; try `qemu-img check -r all`' });
    }
  }
  if (h.nbSnapshots > 0) aligned(h.snapshotsOffset, 'snapshot table offset', H.snapshotsOffset);
}

export interface EncodeHeaderOptions {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly size: number;
  readonly l1Size: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  readonly incompatibleFeatures?: bigint;
  readonly compatibleFeatures?: bigint;
  readonly autoclearFeatures?: bigint;
  readonly compressionType?: CompressionType;
  readonly backingFile?: string | undefined;
  readonly backingFormat?: string | undefined;
  readonly otherExtensions?: readonly { readonly type: number; readonly data: Uint8Array }[];
}

const encoder = new TextEncoder();

/**
 * Encodes a header, its extensions and the backing name into one cluster. Throws E_LIMIT when
 * they do not fit in the first cluster (qcow2.txt keeps them there).
 */
export function encodeQcow2Header(o: EncodeHeaderOptions): Uint8Array {
  const clusterSize = 2 ** o.clusterBits;
  const out = new Uint8Array(clusterSize);
  const dv = view(out);
  const headerLength = o.version === 3 ? V3_HEADER_LENGTH : V2_HEADER_LENGTH;
  dv.setUint32(H.magic, QCOW2_MAGIC);
  dv.setUint32(H.version, o.version);
  dv.setUint32(H.clusterBits, o.clusterBits);
  dv.setBigUint64(H.size, BigInt(o.size));
  dv.setUint32(H.l1Size, o.l1Size);
  dv.setBigUint64(H.l1TableOffset, BigInt(o.l1TableOffset));
  dv.setBigUint64(H.refcountTableOffset, BigInt(o.refcountTableOffset));
  dv.setUint32(H.refcountTableClusters, o.refcountTableClusters);
  if (o.version === 3) {
    let incompat = o.incompatibleFeatures ?? 0n;
    if (o.compressionType === 'zstd') incompat |= INCOMPAT_COMPRESSION;
    dv.setBigUint64(H.incompatibleFeatures, incompat);
    dv.setBigUint64(H.compatibleFeatures, o.compatibleFeatures ?? 0n);
    dv.setBigUint64(H.autoclearFeatures, o.autoclearFeatures ?? 0n);
    dv.setUint32(H.refcountOrder, 4);
    dv.setUint32(H.headerLength, headerLength);
    out[H.compressionType] = o.compressionType === 'zstd' ? 1 : 0;
  }
  let at = headerLength;
  const put = (type: number, data: Uint8Array): void => {
    const padded = Math.ceil(data.length / 8) * 8;
    if (at + 8 + padded + 8 > clusterSize) throw new LimitError(`qcow2 header extensions do not fit in a ${clusterSize}-byte cluster`, { hint: 'use a larger --cluster-size or a shorter backing file name' });
    dv.setUint32(at, type);
    dv.setUint32(at + 4, data.length);
    out.set(data, at + 8);
    at += 8 + padded;
  };
  if (o.backingFormat !== undefined) put(EXT_BACKING_FORMAT, encoder.encode(o.backingFormat));
  for (const ext of o.otherExtensions ?? []) put(ext.type, ext.data);
  dv.setUint32(at, EXT_END);
  dv.setUint32(at + 4, 0);
  at += 8;
  if (o.backingFile !== undefined) {
    const name = encoder.encode(o.backingFile);
    if (name.length === 0 || name.length > MAX_BACKING_NAME) throw new LimitError(`backing file name of ${name.length} bytes (1 to ${MAX_BACKING_NAME})`, { path: o.backingFile });
    if (at + name.length > clusterSize) throw new LimitError(`the backing file name does not fit in a ${clusterSize}-byte header cluster`, { path: o.backingFile, hint: 'use a larger --cluster-size or a shorter backing file name' });
    out.set(name, at);
    dv.setBigUint64(H.backingFileOffset, BigInt(at));
    dv.setUint32(H.backingFileSize, name.length);
  }
  return out;
}
