import { parseSuperblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, type Superblock } from '../extmeta/index.js';
import {
  assertBitmapLayoutSupported,
  BG_BLOCK_UNINIT,
  descriptorBlocks,
  descriptorsPerBlock,
  groupFirstBlock,
  parseGroupDescriptor,
  uninitFlagsHonoured,
  uninitGroupRuns,
  type GroupDescriptor,
} from '../extmeta/groups.js';
import type { ExtGeometry } from './superblock.js';

/**
 * Which blocks were free before the session, read from the block bitmaps in the image (its Disk,
 * not the overlay). The commit need not save the old bytes of free blocks (rolling back the
 * metadata makes them free again), and a large file's data may be written into them in place
 * (src/disk/free-writes.ts). BLOCK_UNINIT groups count as libext2fs counts them (their superblock
 * backup, descriptors and the group tables flex_bg put there are used, the rest is free). Anything
 * not provably free counts as used: an unreadable bitmap, bigalloc, a layout extmeta refuses.
 * Layout: kernel Documentation/filesystems/ext4/{group_descr,blockgroup}.rst.
 */

export type FreeRangeTest = (fsOffset: number, length: number) => boolean;

/** Fills `buffer` from image byte `position`; false when the range is not all there. */
export type ImageRead = (buffer: Buffer, position: number) => boolean;

function readAt(read: ImageRead, position: number, length: number): Buffer | undefined {
  const bytes = Buffer.alloc(length);
  return read(bytes, position) ? bytes : undefined;
}

/** The group descriptors, or undefined when they cannot be read whole. */
function readDescriptors(read: ImageRead, base: number, sb: Superblock): GroupDescriptor[] | undefined {
  const perBlock = descriptorsPerBlock(sb);
  const descriptors: GroupDescriptor[] = [];
  for (const block of descriptorBlocks(sb)) {
    if (block >= sb.blocksCount) return undefined;
    const bytes = readAt(read, base + Number(block) * sb.blockSize, sb.blockSize);
    if (!bytes) return undefined;
    for (let i = 0; i < perBlock && descriptors.length < sb.groupCount; i += 1) descriptors.push(parseGroupDescriptor(bytes, i * sb.descSize, sb));
  }
  return descriptors;
}

export function freeBlockTest(read: ImageRead, base: number, geometry: ExtGeometry): FreeRangeTest {
  const never: FreeRangeTest = () => false;
  const sbBytes = readAt(read, base + SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
  if (!sbBytes) return never;
  let sb: Superblock;
  let descriptors: GroupDescriptor[] | undefined;
  try {
    sb = parseSuperblock(sbBytes);
    // bigalloc maps clusters, an external journal or unknown features: stay conservative.
    assertBitmapLayoutSupported(sb);
    descriptors = readDescriptors(read, base, sb);
  } catch {
    return never;
  }
  const bs = sb.blockSize;
  if (!descriptors || bs !== geometry.blockSize || sb.blocksPerGroup > bs * 8) return never;
  const blocksCount = Number(sb.blocksCount);
  const honourUninit = uninitFlagsHonoured(sb);
  /** Used-block bitmap of a group (bit i = its i-th block), null when it cannot be trusted. */
  const bitmaps = new Map<number, Uint8Array | null>();
  const bitmapOf = (group: number): Uint8Array | null => {
    let bitmap = bitmaps.get(group);
    if (bitmap !== undefined) return bitmap;
    const desc = descriptors[group]!;
    bitmap = null;
    if (honourUninit && desc.flags & BG_BLOCK_UNINIT) {
      // Never initialized: computed as libext2fs does (read_bitmaps), not read.
      const synthesized = new Uint8Array(bs);
      const first = groupFirstBlock(sb, group);
      for (const run of uninitGroupRuns(sb, group, descriptors)) {
        for (let b = Number(run.start - first); b < Number(run.start - first + run.count); b += 1) synthesized[b >> 3]! |= 1 << (b & 7);
      }
      bitmap = synthesized;
    } else if (desc.blockBitmap > 0n && desc.blockBitmap < sb.blocksCount) {
      bitmap = readAt(read, base + Number(desc.blockBitmap) * bs, bs) ?? null;
    }
    bitmaps.set(group, bitmap);
    return bitmap;
  };
  return (fsOffset, length) => {
    const first = Math.floor(fsOffset / bs);
    const last = Math.floor((fsOffset + length - 1) / bs);
    if (first < sb.firstDataBlock || last >= blocksCount) return false;
    for (let block = first; block <= last; block += 1) {
      const rel = block - sb.firstDataBlock;
      const bitmap = bitmapOf(Math.floor(rel / sb.blocksPerGroup));
      if (!bitmap) return false;
      const bit = rel % sb.blocksPerGroup;
      if (bitmap[bit >> 3]! & (1 << (bit & 7))) return false;
    }
    return true;
  };
}
