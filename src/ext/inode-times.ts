import { DiskwrightError } from '../errors.js';
import { INCOMPAT, type ExtGeometry } from './superblock.js';

/**
 * Sets inode timestamps by editing the inode in place (the `ext2fs` package has no utimes): finds
 * the inode through the group descriptor table, writes atime/mtime (and the nanosecond/epoch
 * `_extra` fields of large inodes) and recomputes the metadata_csum inode checksum.
 * Layouts: kernel Documentation/filesystems/ext4/{group_descr,inodes}.rst.
 */

const BG_INODE_TABLE_LO = 0x08;
const BG_INODE_TABLE_HI = 0x28;
const I_ATIME = 0x08;
const I_MTIME = 0x10;
const I_GENERATION = 0x64;
const I_CHECKSUM_LO = 0x7c;
const I_EXTRA_ISIZE = 0x80;
const I_CHECKSUM_HI = 0x82;
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

/** Absolute byte position (in the filesystem) of inode `ino`. */
export function inodePosition(geometry: ExtGeometry, access: ByteAccess, ino: number): number {
  if (ino < 1 || ino > geometry.inodesCount) {
    throw new DiskwrightError('E_OUT_OF_RANGE', `inode ${ino} is outside 1..${geometry.inodesCount}`, { actual: ino });
  }
  const group = Math.floor((ino - 1) / geometry.inodesPerGroup);
  const index = (ino - 1) % geometry.inodesPerGroup;
  const descPosition = group * geometry.descSize;
  const descBlock = Math.floor(descPosition / geometry.blockSize);
  if (geometry.featureIncompat & INCOMPAT.metaBg && descBlock >= geometry.firstMetaBg) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', 'setting times on a meta_bg filesystem beyond its first meta group is not supported', {
      hint: 'set times through `debugfs -w -R "sif PATH mtime …"` instead',
    });
  }
  const gdtStart = (geometry.firstDataBlock + 1) * geometry.blockSize;
  const desc = Buffer.alloc(geometry.descSize);
  access.readInto(desc, 0, geometry.descSize, gdtStart + descPosition);
  let table = desc.readUInt32LE(BG_INODE_TABLE_LO);
  if (geometry.featureIncompat & INCOMPAT.bit64 && geometry.descSize >= 64) table += desc.readUInt32LE(BG_INODE_TABLE_HI) * 2 ** 32;
  return table * geometry.blockSize + index * geometry.inodeSize;
}

function encodeTime(ms: number): { seconds: number; extra: number } {
  const seconds = Math.floor(ms / 1000);
  const nanoseconds = Math.round((ms - seconds * 1000) * 1e6);
  const low = seconds | 0; // signed 32-bit
  const epoch = Math.round((seconds - low) / 2 ** 32) & 3;
  return { seconds: low >>> 0, extra: ((nanoseconds << 2) | epoch) >>> 0 };
}

/** Writes atime and mtime of inode `ino` and fixes its checksum. */
export function setInodeTimes(geometry: ExtGeometry, access: ByteAccess, ino: number, atime: Date, mtime: Date): void {
  const position = inodePosition(geometry, access, ino);
  const inode = Buffer.alloc(geometry.inodeSize);
  access.readInto(inode, 0, geometry.inodeSize, position);
  const a = encodeTime(atime.getTime());
  const m = encodeTime(mtime.getTime());
  inode.writeUInt32LE(a.seconds, I_ATIME);
  inode.writeUInt32LE(m.seconds, I_MTIME);
  const extraSize = geometry.inodeSize > GOOD_OLD_INODE_SIZE ? inode.readUInt16LE(I_EXTRA_ISIZE) : 0;
  if (extraSize >= I_MTIME_EXTRA + 4 - GOOD_OLD_INODE_SIZE) inode.writeUInt32LE(m.extra, I_MTIME_EXTRA);
  if (extraSize >= I_ATIME_EXTRA + 4 - GOOD_OLD_INODE_SIZE) inode.writeUInt32LE(a.extra, I_ATIME_EXTRA);
  if (geometry.metadataCsum) {
    const hasHi = extraSize >= I_CHECKSUM_HI + 2 - GOOD_OLD_INODE_SIZE;
    inode.writeUInt16LE(0, I_CHECKSUM_LO);
    if (hasHi) inode.writeUInt16LE(0, I_CHECKSUM_HI);
    const seed = geometry.featureIncompat & INCOMPAT.csumSeed ? geometry.checksumSeed : crc32cUpdate(0xffffffff, geometry.uuid);
    let crc = crc32cUpdate(seed, le32(ino));
    crc = crc32cUpdate(crc, inode.subarray(I_GENERATION, I_GENERATION + 4));
    crc = crc32cUpdate(crc, inode);
    inode.writeUInt16LE(crc & 0xffff, I_CHECKSUM_LO);
    if (hasHi) inode.writeUInt16LE(crc >>> 16, I_CHECKSUM_HI);
  }
  access.writeFrom(inode, 0, geometry.inodeSize, position);
}
