import { INCOMPAT, RO_COMPAT } from '../extmeta/index.js';
import type { ExtGeometry } from './superblock.js';

/**
 * Which blocks were free before the session, read from the block bitmaps in the image (its Disk,
 * not the overlay). The commit need not save the old bytes of free blocks: rolling back the
 * metadata makes them free again. Anything not provably free counts as used.
 * Layout: kernel Documentation/filesystems/ext4/{group_descr,blockgroup}.rst.
 */

const BG_BLOCK_BITMAP_LO = 0x00;
const BG_FLAGS = 0x12;
const BG_BLOCK_BITMAP_HI = 0x20;
const BG_BLOCK_UNINIT = 0x2;
/** Most groups whose bitmaps we keep in memory (8 KiB each at 64 KiB blocks; named limit). */
const MAX_GROUPS = 1 << 20;

export type FreeRangeTest = (fsOffset: number, length: number) => boolean;

/** Fills `buffer` from image byte `position`; false when the range is not all there. */
export type ImageRead = (buffer: Buffer, position: number) => boolean;

export function freeBlockTest(read: ImageRead, base: number, geometry: ExtGeometry): FreeRangeTest {
  const never: FreeRangeTest = () => false;
  // meta_bg scatters the descriptors, bigalloc maps clusters: stay conservative there.
  if (geometry.featureIncompat & INCOMPAT.meta_bg || geometry.featureRoCompat & RO_COMPAT.bigalloc) return never;
  const bs = geometry.blockSize;
  const groups = Math.ceil((Number(geometry.blocksCount) - geometry.firstDataBlock) / geometry.blocksPerGroup);
  if (!(groups > 0) || groups > MAX_GROUPS || geometry.blocksPerGroup > bs * 8) return never;
  const gdtStart = (geometry.firstDataBlock + 1) * bs;
  const gdt = Buffer.alloc(groups * geometry.descSize);
  if (!read(gdt, base + gdtStart)) return never;
  const bitmaps = new Map<number, Buffer | null>();
  const bitmapOf = (group: number): Buffer | null => {
    let bitmap = bitmaps.get(group);
    if (bitmap !== undefined) return bitmap;
    const desc = group * geometry.descSize;
    const flags = gdt.readUInt16LE(desc + BG_FLAGS);
    let block = gdt.readUInt32LE(desc + BG_BLOCK_BITMAP_LO);
    if (geometry.featureIncompat & INCOMPAT['64bit'] && geometry.descSize >= 64) block += gdt.readUInt32LE(desc + BG_BLOCK_BITMAP_HI) * 2 ** 32;
    bitmap = null;
    // An uninitialized bitmap block holds garbage: treat the group as used.
    if (!(flags & BG_BLOCK_UNINIT) && block > 0 && block < Number(geometry.blocksCount)) {
      const bytes = Buffer.alloc(bs);
      if (read(bytes, base + block * bs)) bitmap = bytes;
    }
    bitmaps.set(group, bitmap);
    return bitmap;
  };
  return (fsOffset, length) => {
    const first = Math.floor(fsOffset / bs);
    const last = Math.floor((fsOffset + length - 1) / bs);
    if (first < geometry.firstDataBlock || last >= Number(geometry.blocksCount)) return false;
    for (let block = first; block <= last; block += 1) {
      const rel = block - geometry.firstDataBlock;
      const bitmap = bitmapOf(Math.floor(rel / geometry.blocksPerGroup));
      if (!bitmap) return false;
      const bit = rel % geometry.blocksPerGroup;
      if (bitmap[bit >> 3]! & (1 << (bit & 7))) return false;
    }
    return true;
  };
}
