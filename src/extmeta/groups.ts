import { LimitError } from '../errors.js';
import { u16le, u32le, requireBytes } from '../bytes/reader.js';
import { INCOMPAT, RO_COMPAT, COMPAT } from './features.js';
import { unsupportedLayout, type Superblock } from './superblock.js';

/**
 * Block group descriptor offsets (struct ext4_group_desc):
 * https://www.kernel.org/doc/html/latest/filesystems/ext4/group_descr.html
 */
const GD = {
  blockBitmapLo: 0x00,
  inodeBitmapLo: 0x04,
  inodeTableLo: 0x08,
  freeBlocksLo: 0x0c,
  flags: 0x12,
  blockBitmapHi: 0x20,
  inodeBitmapHi: 0x24,
  inodeTableHi: 0x28,
} as const;
/** bg_flags: the block bitmap was never initialized (only valid with uninit_bg/metadata_csum). */
export const BG_BLOCK_UNINIT = 0x0002;

/** Most block groups we parse (1 Mi groups = 128 TiB with 4 KiB blocks); beyond is E_LIMIT. */
export const MAX_GROUPS = 1 << 20;

export interface GroupDescriptor {
  readonly blockBitmap: bigint;
  readonly inodeBitmap: bigint;
  readonly inodeTable: bigint;
  readonly freeBlocks: number;
  readonly flags: number;
}

/** Group descriptors per block. */
export function descriptorsPerBlock(sb: Superblock): number {
  return sb.blockSize / sb.descSize;
}

/** Does group `g` carry a superblock backup (and the old-style descriptor table)? ext2fs_bg_has_super. */
export function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (sb.featureCompat & COMPAT.sparse_super2) return g === sb.backupGroups[0] || g === sb.backupGroups[1];
  if (g <= 1 || (sb.featureRoCompat & RO_COMPAT.sparse_super) === 0) return true;
  if (g % 2 === 0) return false;
  for (const base of [3, 5, 7]) {
    let n = base;
    while (n < g) n *= base;
    if (n === g) return true;
  }
  return false;
}

/** First block of group `g`. */
export function groupFirstBlock(sb: Superblock, g: number): bigint {
  return BigInt(sb.firstDataBlock) + BigInt(g) * BigInt(sb.blocksPerGroup);
}

/** Blocks in group `g` (the last group may be short). */
export function groupBlockCount(sb: Superblock, g: number): number {
  const rest = sb.blocksCount - groupFirstBlock(sb, g);
  return Number(rest < BigInt(sb.blocksPerGroup) ? rest : BigInt(sb.blocksPerGroup));
}

/** Block numbers of the descriptor-table blocks, in order (classic layout or meta_bg). */
export function descriptorBlocks(sb: Superblock): bigint[] {
  const perBlock = descriptorsPerBlock(sb);
  const count = Math.ceil(sb.groupCount / perBlock);
  const metaBg = (sb.featureIncompat & INCOMPAT.meta_bg) !== 0;
  const first = BigInt(sb.firstDataBlock) + 1n;
  const blocks: bigint[] = [];
  for (let d = 0; d < count; d++) {
    if (!metaBg || d < sb.firstMetaBg) {
      blocks.push(first + BigInt(d));
    } else {
      // meta_bg: descriptor block d lives in the first group of meta group d, after its superblock.
      const group = d * perBlock;
      blocks.push(groupFirstBlock(sb, group) + (groupHasSuper(sb, group) ? 1n : 0n));
    }
  }
  return blocks;
}

/** Parses descriptor `index` of a descriptor block. */
export function parseGroupDescriptor(bytes: Uint8Array, at: number, sb: Superblock): GroupDescriptor {
  requireBytes(bytes, at, sb.descSize, 'ext group descriptor');
  const wide = sb.descSize >= 64;
  const hi = (offset: number): bigint => (wide ? BigInt(u32le(bytes, at + offset)) << 32n : 0n);
  return {
    blockBitmap: BigInt(u32le(bytes, at + GD.blockBitmapLo)) + hi(GD.blockBitmapHi),
    inodeBitmap: BigInt(u32le(bytes, at + GD.inodeBitmapLo)) + hi(GD.inodeBitmapHi),
    inodeTable: BigInt(u32le(bytes, at + GD.inodeTableLo)) + hi(GD.inodeTableHi),
    freeBlocks: u16le(bytes, at + GD.freeBlocksLo),
    flags: u16le(bytes, at + GD.flags),
  };
}

/** Throws for layouts whose allocation cannot be read from the block bitmaps simply. */
export function assertBitmapLayoutSupported(sb: Superblock): void {
  if (sb.groupCount > MAX_GROUPS) throw new LimitError(`ext filesystem has ${sb.groupCount} block groups, more than the limit of ${MAX_GROUPS}`, { actual: sb.groupCount, expected: MAX_GROUPS });
  if (sb.featureRoCompat & RO_COMPAT.bigalloc) throw unsupportedLayout('bigalloc (cluster bitmaps)');
  if (sb.featureIncompat & INCOMPAT.journal_dev) throw unsupportedLayout('an external journal device');
  if ((sb.featureIncompat & INCOMPAT.meta_bg) && (sb.featureCompat & COMPAT.sparse_super2)) throw unsupportedLayout('meta_bg together with sparse_super2');
  if (sb.unknownIncompat.length > 0) throw unsupportedLayout(`unknown incompat features (${sb.unknownIncompat.join(', ')})`);
  if (sb.blocksPerGroup % 8 !== 0) throw unsupportedLayout(`${sb.blocksPerGroup} blocks per group (not a multiple of 8)`);
}

/** Groups whose BLOCK_UNINIT flag counts (the flag means nothing without group checksums). */
export function uninitFlagsHonoured(sb: Superblock): boolean {
  return (sb.featureRoCompat & (RO_COMPAT.uninit_bg | RO_COMPAT.metadata_csum)) !== 0;
}

/** A run of blocks `[start, start + count)`. */
export interface BlockRun {
  readonly start: bigint;
  readonly count: bigint;
}

/**
 * Used blocks of group `g` from its bitmap bytes: one run per stretch of set bits (bit i = block
 * groupFirstBlock + i; padding bits past the end of the filesystem are ignored).
 */
export function runsFromBitmap(sb: Superblock, g: number, bitmap: Uint8Array): BlockRun[] {
  const blocks = groupBlockCount(sb, g);
  requireBytes(bitmap, 0, Math.ceil(blocks / 8), 'ext block bitmap');
  const first = groupFirstBlock(sb, g);
  const runs: BlockRun[] = [];
  let runStart = -1;
  for (let i = 0; i < blocks; ) {
    const byte = bitmap[i >>> 3]!;
    // Whole bytes at once where possible: full and empty bytes are the common case.
    if ((i & 7) === 0 && i + 8 <= blocks && (byte === 0 || byte === 0xff)) {
      if (byte === 0xff) {
        if (runStart < 0) runStart = i;
      } else if (runStart >= 0) {
        runs.push({ start: first + BigInt(runStart), count: BigInt(i - runStart) });
        runStart = -1;
      }
      i += 8;
      continue;
    }
    const used = (byte >>> (i & 7)) & 1;
    if (used && runStart < 0) runStart = i;
    if (!used && runStart >= 0) {
      runs.push({ start: first + BigInt(runStart), count: BigInt(i - runStart) });
      runStart = -1;
    }
    i++;
  }
  if (runStart >= 0) runs.push({ start: first + BigInt(runStart), count: BigInt(blocks - runStart) });
  return runs;
}

/**
 * Used blocks of a BLOCK_UNINIT group, computed the way libext2fs does: its superblock backup and
 * descriptor blocks (plus reserved GDT blocks) when it has them, and any group's bitmaps and
 * inode table that flex_bg placed inside it.
 */
export function uninitGroupRuns(sb: Superblock, g: number, descriptors: readonly GroupDescriptor[]): BlockRun[] {
  const first = groupFirstBlock(sb, g);
  const end = first + BigInt(groupBlockCount(sb, g));
  const runs: BlockRun[] = [];
  const perBlock = descriptorsPerBlock(sb);
  const metaBg = (sb.featureIncompat & INCOMPAT.meta_bg) !== 0;
  const superBlocks = groupHasSuper(sb, g) ? 1n : 0n;
  if (superBlocks) {
    const oldDesc = metaBg ? sb.firstMetaBg : Math.ceil(sb.groupCount / perBlock) + sb.reservedGdtBlocks;
    runs.push({ start: first, count: 1n + BigInt(oldDesc) });
  }
  if (metaBg) {
    const inMeta = g % perBlock;
    if (Math.floor(g / perBlock) >= sb.firstMetaBg && (inMeta === 0 || inMeta === 1 || inMeta === perBlock - 1)) {
      runs.push({ start: first + superBlocks, count: 1n });
    }
  }
  const tableBlocks = BigInt(Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize));
  for (const d of descriptors) {
    for (const run of [{ start: d.blockBitmap, count: 1n }, { start: d.inodeBitmap, count: 1n }, { start: d.inodeTable, count: tableBlocks }]) {
      const s = run.start > first ? run.start : first;
      const e = run.start + run.count < end ? run.start + run.count : end;
      if (e > s) runs.push({ start: s, count: e - s });
    }
  }
  return runs;
}
