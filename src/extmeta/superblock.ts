import { BadSignatureError, DiskwrightError, LimitError } from '../errors.js';
import { requireBytes, u16le, u32le, u8 } from '../bytes/reader.js';
import { COMPAT, featureNames, INCOMPAT, RO_COMPAT, unknownIncompat } from './features.js';

/**
 * ext2/3/4 superblock field offsets, relative to the superblock (which starts 1024 bytes into the
 * filesystem). Source: https://www.kernel.org/doc/html/latest/filesystems/ext4/globals.html
 * ("The Super Block", struct ext4_super_block).
 */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
const SB = {
  inodesCount: 0x00,
  blocksCountLo: 0x04,
  rBlocksCountLo: 0x08,
  freeBlocksCountLo: 0x0c,
  freeInodesCount: 0x10,
  firstDataBlock: 0x14,
  logBlockSize: 0x18,
  logClusterSize: 0x1c,
  blocksPerGroup: 0x20,
  clustersPerGroup: 0x24,
  inodesPerGroup: 0x28,
  mtime: 0x2c,
  wtime: 0x30,
  mntCount: 0x34,
  magic: 0x38,
  state: 0x3a,
  errors: 0x3c,
  lastCheck: 0x40,
  creatorOs: 0x48,
  revLevel: 0x4c,
  firstIno: 0x54,
  inodeSize: 0x58,
  featureCompat: 0x5c,
  featureIncompat: 0x60,
  featureRoCompat: 0x64,
  uuid: 0x68,
  volumeName: 0x78,
  lastMounted: 0x88,
  reservedGdtBlocks: 0xce,
  journalInum: 0xe0,
  descSize: 0xfe,
  firstMetaBg: 0x104,
  mkfsTime: 0x108,
  blocksCountHi: 0x150,
  rBlocksCountHi: 0x154,
  freeBlocksCountHi: 0x158,
  logGroupsPerFlex: 0x174,
  checksumType: 0x175,
  backupBgs: 0x24c,
  /** s_checksum_seed: crc32c(~0, uuid), used instead of the uuid with metadata_csum_seed. */
  checksumSeed: 0x270,
  checksum: 0x3fc,
} as const;

export const EXT_MAGIC = 0xef53;
/** s_state bits. */
const STATE_VALID = 0x0001;
const STATE_ERROR = 0x0002;
const STATE_ORPHANS = 0x0004;
/** Block sizes ext supports: 1 KiB (log 0) … 64 KiB (log 6). */
export const MAX_LOG_BLOCK_SIZE = 6;
/** Group descriptor sizes: 32 without 64bit, else s_desc_size (64 … 1024, a power of two). */
export const MIN_DESC_SIZE = 32;
export const MIN_DESC_SIZE_64BIT = 64;
export const MAX_DESC_SIZE = 1024;

/** What `readSuperblock` returns: the superblock fields diskwright and its users need. */
export interface Superblock {
  readonly magicOk: true;
  readonly kind: 'ext2' | 'ext3' | 'ext4';
  readonly blockSize: number;
  readonly clusterSize: number;
  readonly blocksCount: bigint;
  readonly reservedBlocksCount: bigint;
  readonly freeBlocksCount: bigint;
  readonly inodesCount: number;
  readonly freeInodesCount: number;
  readonly firstDataBlock: number;
  readonly blocksPerGroup: number;
  readonly clustersPerGroup: number;
  readonly inodesPerGroup: number;
  readonly inodeSize: number;
  readonly groupCount: number;
  /** Group descriptor size in bytes (32 or s_desc_size with 64bit). */
  readonly descSize: number;
  readonly reservedGdtBlocks: number;
  readonly firstMetaBg: number;
  readonly logGroupsPerFlex: number;
  readonly uuid: string;
  readonly label: string;
  readonly lastMountedOn: string;
  readonly state: { readonly clean: boolean; readonly errors: boolean; readonly orphans: boolean };
  readonly revision: number;
  readonly featureCompat: number;
  readonly featureIncompat: number;
  readonly featureRoCompat: number;
  /** Feature names in the order dumpe2fs prints them. */
  readonly features: readonly string[];
  readonly hasJournal: boolean;
  /** The journal holds transactions not yet replayed: writing the filesystem now would lose them. */
  readonly needsRecovery: boolean;
  readonly unknownIncompat: readonly string[];
  readonly journalInode: number;
  readonly mountCount: number;
  /** Unix seconds; 0 when never. */
  readonly lastMountTime: number;
  readonly lastWriteTime: number;
  readonly lastCheckTime: number;
  readonly createdTime: number;
  /** sparse_super2 backup groups. */
  readonly backupGroups: readonly [number, number];
  /** s_checksum_seed (meaningful with the metadata_csum_seed feature). */
  readonly checksumSeed: number;
}

function has(word: number, bit: number): boolean {
  return (word & bit) !== 0;
}

function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString('latin1');
}

/** ext4 when a feature ext3 lacks is on (blkid's rule); ext3 with a journal; else ext2. */
function kindOf(compat: number, incompat: number, roCompat: number): Superblock['kind'] {
  const ext3Incompat = INCOMPAT.filetype | INCOMPAT.needs_recovery | INCOMPAT.meta_bg;
  const ext3RoCompat = RO_COMPAT.sparse_super | RO_COMPAT.large_file | 0x0004; /* btree_dir */
  if ((incompat & ~ext3Incompat) !== 0 || (roCompat & ~ext3RoCompat) !== 0) return 'ext4';
  return has(compat, COMPAT.has_journal) ? 'ext3' : 'ext2';
}

/**
 * Parses a superblock from `bytes` (the 1024 bytes at filesystem offset 1024). Pure: never
 * mutates its input. Throws `E_BAD_SIGNATURE` when the magic is missing, `E_TRUNCATED` when
 * bytes are short and `E_LIMIT` when geometry fields are out of the ranges ext allows.
 */
export function parseSuperblock(bytes: Uint8Array): Superblock {
  requireBytes(bytes, 0, SUPERBLOCK_SIZE, 'ext superblock');
  const magic = u16le(bytes, SB.magic);
  if (magic !== EXT_MAGIC) {
    throw new BadSignatureError(`no ext2/3/4 filesystem: superblock magic is 0x${magic.toString(16)}, expected 0xef53`, {
      offset: SUPERBLOCK_OFFSET + SB.magic,
      expected: EXT_MAGIC,
      actual: magic,
      hint: 'check the partition number or --offset',
    });
  }
  const logBlockSize = u32le(bytes, SB.logBlockSize);
  const logClusterSize = u32le(bytes, SB.logClusterSize);
  if (logBlockSize > MAX_LOG_BLOCK_SIZE) throw new LimitError(`ext superblock: block size 2^(10+${logBlockSize}) exceeds 64 KiB`, { offset: SB.logBlockSize, actual: logBlockSize });
  const compat = u32le(bytes, SB.featureCompat);
  const incompat = u32le(bytes, SB.featureIncompat);
  const roCompat = u32le(bytes, SB.featureRoCompat);
  const blockSize = 1024 * 2 ** logBlockSize;
  const bigalloc = has(roCompat, RO_COMPAT.bigalloc);
  if (bigalloc && (logClusterSize < logBlockSize || logClusterSize > logBlockSize + 16)) {
    throw new LimitError(`ext superblock: cluster size log ${logClusterSize} is out of range`, { offset: SB.logClusterSize, actual: logClusterSize });
  }
  const clusterSize = bigalloc ? 1024 * 2 ** logClusterSize : blockSize;
  const is64 = has(incompat, INCOMPAT['64bit']);
  const hi = (offset: number): bigint => (is64 ? BigInt(u32le(bytes, offset)) << 32n : 0n);
  const blocksCount = BigInt(u32le(bytes, SB.blocksCountLo)) + hi(SB.blocksCountHi);
  const firstDataBlock = u32le(bytes, SB.firstDataBlock);
  const blocksPerGroup = u32le(bytes, SB.blocksPerGroup);
  const clustersPerGroup = u32le(bytes, SB.clustersPerGroup);
  const inodesPerGroup = u32le(bytes, SB.inodesPerGroup);
  const bitsPerBlock = blockSize * 8;
  if (firstDataBlock > 1) throw new LimitError(`ext superblock: first data block ${firstDataBlock} must be 0 or 1`, { offset: SB.firstDataBlock, actual: firstDataBlock });
  if (blocksPerGroup === 0 || (!bigalloc && blocksPerGroup > bitsPerBlock) || clustersPerGroup === 0 || clustersPerGroup > bitsPerBlock) {
    throw new LimitError(`ext superblock: ${blocksPerGroup} blocks per group is out of range (1..${bitsPerBlock})`, { offset: SB.blocksPerGroup, actual: blocksPerGroup });
  }
  if (inodesPerGroup === 0 || inodesPerGroup > bitsPerBlock) {
    throw new LimitError(`ext superblock: ${inodesPerGroup} inodes per group is out of range (1..${bitsPerBlock})`, { offset: SB.inodesPerGroup, actual: inodesPerGroup });
  }
  if (blocksCount <= BigInt(firstDataBlock)) {
    throw new LimitError(`ext superblock: block count ${blocksCount} is too small`, { offset: SB.blocksCountLo, actual: blocksCount });
  }
  const revision = u32le(bytes, SB.revLevel);
  const inodeSize = revision === 0 ? 128 : u16le(bytes, SB.inodeSize);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
    throw new LimitError(`ext superblock: inode size ${inodeSize} is invalid`, { offset: SB.inodeSize, actual: inodeSize });
  }
  let descSize = MIN_DESC_SIZE;
  if (is64) {
    descSize = u16le(bytes, SB.descSize);
    if (descSize < MIN_DESC_SIZE_64BIT || descSize > MAX_DESC_SIZE || (descSize & (descSize - 1)) !== 0) {
      throw new LimitError(`ext superblock: group descriptor size ${descSize} is invalid for a 64bit filesystem`, { offset: SB.descSize, actual: descSize });
    }
  }
  const groupCount = Number((blocksCount - BigInt(firstDataBlock) + BigInt(blocksPerGroup) - 1n) / BigInt(blocksPerGroup));
  const state = u16le(bytes, SB.state);
  return {
    magicOk: true,
    kind: kindOf(compat, incompat, roCompat),
    blockSize,
    clusterSize,
    blocksCount,
    reservedBlocksCount: BigInt(u32le(bytes, SB.rBlocksCountLo)) + hi(SB.rBlocksCountHi),
    freeBlocksCount: BigInt(u32le(bytes, SB.freeBlocksCountLo)) + hi(SB.freeBlocksCountHi),
    inodesCount: u32le(bytes, SB.inodesCount),
    freeInodesCount: u32le(bytes, SB.freeInodesCount),
    firstDataBlock,
    blocksPerGroup,
    clustersPerGroup,
    inodesPerGroup,
    inodeSize,
    groupCount,
    descSize,
    reservedGdtBlocks: u16le(bytes, SB.reservedGdtBlocks),
    firstMetaBg: u32le(bytes, SB.firstMetaBg),
    logGroupsPerFlex: u8(bytes, SB.logGroupsPerFlex),
    uuid: formatUuid(bytes.subarray(SB.uuid, SB.uuid + 16)),
    label: cString(bytes.subarray(SB.volumeName, SB.volumeName + 16)),
    lastMountedOn: cString(bytes.subarray(SB.lastMounted, SB.lastMounted + 64)),
    state: { clean: has(state, STATE_VALID), errors: has(state, STATE_ERROR), orphans: has(state, STATE_ORPHANS) },
    revision,
    featureCompat: compat,
    featureIncompat: incompat,
    featureRoCompat: roCompat,
    features: featureNames(compat, incompat, roCompat),
    hasJournal: has(compat, COMPAT.has_journal),
    needsRecovery: has(incompat, INCOMPAT.needs_recovery),
    unknownIncompat: unknownIncompat(incompat),
    journalInode: u32le(bytes, SB.journalInum),
    mountCount: u16le(bytes, SB.mntCount),
    lastMountTime: u32le(bytes, SB.mtime),
    lastWriteTime: u32le(bytes, SB.wtime),
    lastCheckTime: u32le(bytes, SB.lastCheck),
    createdTime: u32le(bytes, SB.mkfsTime),
    backupGroups: [u32le(bytes, SB.backupBgs), u32le(bytes, SB.backupBgs + 4)],
    checksumSeed: u32le(bytes, SB.checksumSeed),
  };
}

/** Thrown for layouts `readUsedBlockRanges` does not handle (rather than guessing). */
export function unsupportedLayout(what: string): DiskwrightError {
  return new DiskwrightError('E_UNSUPPORTED_FEATURE', `ext block bitmaps: ${what} is not supported`, {
    hint: 'copy without --only-used (a full, byte-identical copy works for every filesystem)',
  });
}
