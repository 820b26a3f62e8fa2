import { DiskwrightError } from '../errors.js';
import { COMPAT, INCOMPAT, RO_COMPAT } from '../extmeta/index.js';
import type { ExtGeometry } from './superblock.js';

/**
 * Sets inode timestamps by editing the inode in place (the `ext2fs` package has no utimes): finds
 * the inode through the group descriptor table, writes atime/mtime (and the nanosecond/epoch
 * `_extra` fields of large inodes) and recomputes the metadata_csum inode checksum.
 * Layouts: kernel Documentation/filesystems/ext4/{group_descr,inodes}.rst.
 */

const BG_INODE_TABLE_LO = 0x08;
const BG_INODE_TABLE_HI = 0x28;
const I_ATIME = 0x08;
const I_CTIME = 0x0c;
const I_MTIME = 0x10;
const I_GENERATION = 0x64;
const I_CHECKSUM_LO = 0x7c;
const I_EXTRA_ISIZE = 0x80;
const I_CHECKSUM_HI = 0x82;
const I_CTIME_EXTRA = 0x84;
const I_MTIME_EXTRA = 0x88;
const I_ATIME_EXTRA = 0x8c;
const GOOD_OLD_INODE_SIZE = 128;

/** Random access to the filesystem's bytes (offsets relative to the filesystem start). */
export interface ByteAccess {
  readInto(buffer: Buffer, bufferOffset: number, length: number, position: number): void;
  writeFrom(buffer: Uint8Array, bufferOffset: number, length: number, position: number): void;
}

let crcTable: Uint32Array | undefined;

/** CRC32C (Castagnoli) update without pre/post inversion, as e2fsprogs' `ext2fs_crc32c_le`. */
export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = crc >>> 0;
  for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

function le32(value: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

/** The metadata_csum seed: s_checksum_seed with metadata_csum_seed, else crc32c(~0, uuid). */
function csumSeed(geometry: ExtGeometry): number {
  return geometry.featureIncompat & INCOMPAT.metadata_csum_seed ? geometry.checksumSeed : crc32cUpdate(0xffffffff, geometry.uuid);
}

/** Whether block group `group` holds a superblock backup (sparse_super: 0, 1, powers of 3, 5, 7). */
function groupHasSuper(geometry: ExtGeometry, group: number): boolean {
  if (!(geometry.featureRoCompat & RO_COMPAT.sparse_super) || group <= 1) return true;
  for (const base of [3, 5, 7]) {
    let power = base;
    while (power < group) power *= base;
    if (power === group) return true;
  }
  return false;
}

/** Absolute byte position (in the filesystem) of inode `ino`. */
export function inodePosition(geometry: ExtGeometry, access: ByteAccess, ino: number): number {
  if (ino < 1 || ino > geometry.inodesCount) {
    throw new DiskwrightError('E_OUT_OF_RANGE', `inode ${ino} is outside 1..${geometry.inodesCount}`, { actual: ino });
  }
  const group = Math.floor((ino - 1) / geometry.inodesPerGroup);
  const index = (ino - 1) % geometry.inodesPerGroup;
  const descPosition = group * geometry.descSize;
  const descBlock = Math.floor(descPosition / geometry.blockSize);
  const within = descPosition - descBlock * geometry.blockSize;
  let descAt: number;
  if (geometry.featureIncompat & INCOMPAT.meta_bg && descBlock >= geometry.firstMetaBg) {
    // meta_bg: the descriptor block of meta group N is in the first group of that meta group,
    // after its superblock backup if it has one (kernel ext4_bg_num_gdb / descriptor_loc).
    if (geometry.featureCompat & COMPAT.sparse_super2) {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', 'setting times on a meta_bg + sparse_super2 filesystem is not supported');
    }
    const firstGroup = descBlock * (geometry.blockSize / geometry.descSize);
    const groupStart = geometry.firstDataBlock + firstGroup * geometry.blocksPerGroup;
    descAt = (groupStart + (groupHasSuper(geometry, firstGroup) ? 1 : 0)) * geometry.blockSize + within;
  } else {
    descAt = (geometry.firstDataBlock + 1 + descBlock) * geometry.blockSize + within;
  }
  const desc = Buffer.alloc(geometry.descSize);
  access.readInto(desc, 0, geometry.descSize, descAt);
  let table = desc.readUInt32LE(BG_INODE_TABLE_LO);
  if (geometry.featureIncompat & INCOMPAT['64bit'] && geometry.descSize >= 64) table += desc.readUInt32LE(BG_INODE_TABLE_HI) * 2 ** 32;
  return table * geometry.blockSize + index * geometry.inodeSize;
}

/** Seconds a large inode's `_extra` field can reach: signed 32-bit plus 2 epoch bits (1901–2446). */
const EXTRA_MIN_SECONDS = -(2 ** 31);
const EXTRA_MAX_SECONDS = 2 ** 31 - 1 + 3 * 2 ** 32;

/**
 * ext4's time encoding (kernel ext4_encode_extra_time): the low 32 bits of the seconds, signed,
 * in i_Xtime; (seconds - low) / 2^32 in the 2 epoch bits of i_Xtime_extra, nanoseconds above them.
 * Without an extra field only the signed 32-bit range exists and times are clamped to it, as the
 * kernel does, instead of wrapping (2100 would read back as 1964).
 */
export function encodeTime(ms: number, hasExtra = true): { seconds: number; extra: number } {
  let seconds = Math.floor(ms / 1000);
  let nanoseconds = Math.round((ms - seconds * 1000) * 1e6);
  const min = hasExtra ? EXTRA_MIN_SECONDS : -(2 ** 31);
  const max = hasExtra ? EXTRA_MAX_SECONDS : 2 ** 31 - 1;
  if (seconds < min || seconds > max) {
    seconds = Math.min(max, Math.max(min, seconds));
    nanoseconds = 0;
  }
  const low = seconds | 0; // signed 32-bit
  const epoch = Math.round((seconds - low) / 2 ** 32) & 3;
  return { seconds: low >>> 0, extra: ((nanoseconds << 2) | epoch) >>> 0 };
}

/** Seconds since 1970 from i_Xtime and, for large inodes, i_Xtime_extra (kernel ext4_decode_extra_time). */
export function decodeTime(low: number, extra: number | undefined): number {
  return (low | 0) + (extra === undefined ? 0 : (extra & 3) * 2 ** 32);
}

/** The three timestamps of an inode as stored: low words and, where the inode has them, extra words. */
export interface StoredInodeTimes {
  readonly atime: { readonly low: number; readonly extra?: number };
  readonly mtime: { readonly low: number; readonly extra?: number };
  readonly ctime: { readonly low: number; readonly extra?: number };
}

/** Reads inode `ino`'s stored timestamps (for the epoch bits the `ext2fs` package ignores). */
export function readInodeTimes(geometry: ExtGeometry, access: ByteAccess, ino: number): StoredInodeTimes {
  const position = inodePosition(geometry, access, ino);
  const inode = Buffer.alloc(geometry.inodeSize);
  access.readInto(inode, 0, geometry.inodeSize, position);
  const extraSize = geometry.inodeSize > GOOD_OLD_INODE_SIZE ? inode.readUInt16LE(I_EXTRA_ISIZE) : 0;
  const field = (lowAt: number, extraAt: number) => ({
    low: inode.readUInt32LE(lowAt),
    ...(extraSize >= extraAt + 4 - GOOD_OLD_INODE_SIZE ? { extra: inode.readUInt32LE(extraAt) } : {}),
  });
  return { atime: field(I_ATIME, I_ATIME_EXTRA), mtime: field(I_MTIME, I_MTIME_EXTRA), ctime: field(I_CTIME, I_CTIME_EXTRA) };
}

/**
 * Reads inode `ino`, lets `mutate` change its bytes, recomputes the metadata_csum checksum and
 * writes it back. `mutate` returning false leaves the inode untouched.
 */
export function patchInode(geometry: ExtGeometry, access: ByteAccess, ino: number, mutate: (inode: Buffer) => boolean | void): boolean {
  const position = inodePosition(geometry, access, ino);
  const inode = Buffer.alloc(geometry.inodeSize);
  access.readInto(inode, 0, geometry.inodeSize, position);
  if (mutate(inode) === false) return false;
  const extraSize = geometry.inodeSize > GOOD_OLD_INODE_SIZE ? inode.readUInt16LE(I_EXTRA_ISIZE) : 0;
  if (geometry.metadataCsum) {
    const hasHi = extraSize >= I_CHECKSUM_HI + 2 - GOOD_OLD_INODE_SIZE;
    inode.writeUInt16LE(0, I_CHECKSUM_LO);
    if (hasHi) inode.writeUInt16LE(0, I_CHECKSUM_HI);
    let crc = crc32cUpdate(csumSeed(geometry), le32(ino));
    crc = crc32cUpdate(crc, inode.subarray(I_GENERATION, I_GENERATION + 4));
    crc = crc32cUpdate(crc, inode);
    inode.writeUInt16LE(crc & 0xffff, I_CHECKSUM_LO);
    if (hasHi) inode.writeUInt16LE(crc >>> 16, I_CHECKSUM_HI);
  }
  access.writeFrom(inode, 0, geometry.inodeSize, position);
  return true;
}

/** Writes atime and mtime of inode `ino` and fixes its checksum. */
export function setInodeTimes(geometry: ExtGeometry, access: ByteAccess, ino: number, atime: Date, mtime: Date): void {
  patchInode(geometry, access, ino, (inode) => {
    const extraSize = geometry.inodeSize > GOOD_OLD_INODE_SIZE ? inode.readUInt16LE(I_EXTRA_ISIZE) : 0;
    const mExtra = extraSize >= I_MTIME_EXTRA + 4 - GOOD_OLD_INODE_SIZE;
    const aExtra = extraSize >= I_ATIME_EXTRA + 4 - GOOD_OLD_INODE_SIZE;
    const a = encodeTime(atime.getTime(), aExtra);
    const m = encodeTime(mtime.getTime(), mExtra);
    inode.writeUInt32LE(a.seconds, I_ATIME);
    inode.writeUInt32LE(m.seconds, I_MTIME);
    if (mExtra) inode.writeUInt32LE(m.extra, I_MTIME_EXTRA);
    if (aExtra) inode.writeUInt32LE(a.extra, I_ATIME_EXTRA);
  });
}

/** A run of a file: `length` blocks from logical block `logical` stored at physical block `physical`. */
export interface FileExtent {
  readonly logical: number;
  readonly length: number;
  readonly physical: number;
}
