import { open } from 'node:fs/promises';
import { BadSignatureError, DiskwrightError, TruncatedError } from '../errors.js';

/** The ext superblock starts 1024 bytes into the filesystem and is 1024 bytes long. */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
const EXT_MAGIC = 0xef53;

// Field offsets inside the superblock (kernel Documentation/filesystems/ext4/super.rst).
const S_INODES_COUNT = 0x00;
const S_BLOCKS_COUNT_LO = 0x04;
const S_FIRST_DATA_BLOCK = 0x14;
const S_LOG_BLOCK_SIZE = 0x18;
const S_BLOCKS_PER_GROUP = 0x20;
const S_INODES_PER_GROUP = 0x28;
const S_MAGIC = 0x38;
const S_STATE = 0x3a;
const S_REV_LEVEL = 0x4c;
const S_INODE_SIZE = 0x58;
const S_FEATURE_COMPAT = 0x5c;
const S_FEATURE_INCOMPAT = 0x60;
const S_FEATURE_RO_COMPAT = 0x64;
const S_UUID = 0x68;
const S_DESC_SIZE = 0xfe;
const S_FIRST_META_BG = 0x104;
const S_BLOCKS_COUNT_HI = 0x150;
const S_CHECKSUM_SEED = 0x270;

/** Largest block size ext accepts (log_block_size ≤ 6 → 64 KiB). */
const MAX_LOG_BLOCK_SIZE = 6;

export const COMPAT = { hasJournal: 0x4 } as const;
export const INCOMPAT = {
  compression: 0x1,
  filetype: 0x2,
  recover: 0x4,
  journalDev: 0x8,
  metaBg: 0x10,
  extents: 0x40,
  bit64: 0x80,
  mmp: 0x100,
  flexBg: 0x200,
  eaInode: 0x400,
  dirdata: 0x1000,
  csumSeed: 0x2000,
  largedir: 0x4000,
  inlineData: 0x8000,
  encrypt: 0x10000,
  casefold: 0x20000,
} as const;
export const RO_COMPAT = { quota: 0x100, bigalloc: 0x200, metadataCsum: 0x400, readonly: 0x1000 } as const;

/** Incompat features libext2fs 1.44.1 (the `ext2fs` npm package) reads and writes correctly. */
const WRITABLE_INCOMPAT =
  INCOMPAT.filetype | INCOMPAT.recover | INCOMPAT.metaBg | INCOMPAT.extents | INCOMPAT.bit64 | INCOMPAT.flexBg |
  INCOMPAT.eaInode | INCOMPAT.csumSeed | INCOMPAT.largedir | INCOMPAT.inlineData;
/** Incompat features it can at least read (names are opaque with encrypt). */
const READABLE_INCOMPAT = WRITABLE_INCOMPAT | INCOMPAT.encrypt | INCOMPAT.mmp;
/** ro_compat features known to libext2fs 1.44.1: sparse_super … project (0x1..0x2000 minus 0x4/0x800). */
const KNOWN_RO_COMPAT = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x400 | 0x1000 | 0x2000;

const INCOMPAT_NAMES: Record<number, string> = {
  0x1: 'compression', 0x2: 'filetype', 0x4: 'needs_recovery', 0x8: 'journal_dev', 0x10: 'meta_bg', 0x40: 'extent',
  0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg', 0x400: 'ea_inode', 0x1000: 'dirdata', 0x2000: 'metadata_csum_seed',
  0x4000: 'large_dir', 0x8000: 'inline_data', 0x10000: 'encrypt', 0x20000: 'casefold',
};
const RO_COMPAT_NAMES: Record<number, string> = {
  0x1: 'sparse_super', 0x2: 'large_file', 0x8: 'huge_file', 0x10: 'uninit_bg', 0x20: 'dir_nlink', 0x40: 'extra_isize',
  0x100: 'quota', 0x200: 'bigalloc', 0x400: 'metadata_csum', 0x800: 'replica', 0x1000: 'read-only', 0x2000: 'project',
  0x4000: 'shared_blocks', 0x8000: 'verity', 0x10000: 'orphan_present',
};

/** What file operations need to know about an ext filesystem, parsed from its superblock. */
export interface ExtGeometry {
  readonly blockSize: number;
  readonly blocksCount: bigint;
  readonly inodesCount: number;
  readonly blocksPerGroup: number;
  readonly inodesPerGroup: number;
  readonly inodeSize: number;
  readonly firstDataBlock: number;
  readonly descSize: number;
  readonly firstMetaBg: number;
  readonly featureCompat: number;
  readonly featureIncompat: number;
  readonly featureRoCompat: number;
  readonly uuid: Uint8Array;
  readonly checksumSeed: number;
  readonly hasJournal: boolean;
  readonly needsRecovery: boolean;
  readonly errorsRecorded: boolean;
  readonly metadataCsum: boolean;
}

function names(bits: number, table: Record<number, string>): string[] {
  const out: string[] = [];
  for (let bit = 1; bit !== 0 && bit <= bits; bit = (bit << 1) >>> 0) {
    if (bits & bit) out.push(table[bit] ?? `0x${bit.toString(16)}`);
  }
  return out;
}

/** Parses the 1024-byte superblock (pure; the input is not modified). */
export function parseExtSuperblock(sb: Uint8Array): ExtGeometry {
  if (sb.length < SUPERBLOCK_SIZE) {
    throw new TruncatedError(`ext superblock needs ${SUPERBLOCK_SIZE} bytes, got ${sb.length}`, { expected: SUPERBLOCK_SIZE, actual: sb.length });
  }
  const view = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
  const magic = view.getUint16(S_MAGIC, true);
  if (magic !== EXT_MAGIC) {
    throw new BadSignatureError('no ext2/3/4 filesystem here (superblock magic is not 0xEF53)', {
      offset: SUPERBLOCK_OFFSET + S_MAGIC,
      expected: EXT_MAGIC,
      actual: magic,
      hint: 'pass --partition N for a disk image with a partition table',
    });
  }
  const logBlockSize = view.getUint32(S_LOG_BLOCK_SIZE, true);
  if (logBlockSize > MAX_LOG_BLOCK_SIZE) {
    throw new DiskwrightError('E_EXTFS', `ext superblock has an impossible block size (log ${logBlockSize})`, { offset: SUPERBLOCK_OFFSET + S_LOG_BLOCK_SIZE });
  }
  const compat = view.getUint32(S_FEATURE_COMPAT, true);
  const incompat = view.getUint32(S_FEATURE_INCOMPAT, true);
  const roCompat = view.getUint32(S_FEATURE_RO_COMPAT, true);
  const rev = view.getUint32(S_REV_LEVEL, true);
  const is64 = (incompat & INCOMPAT.bit64) !== 0;
  const descSize = is64 ? view.getUint16(S_DESC_SIZE, true) : 32;
  const uuid = sb.slice(S_UUID, S_UUID + 16);
  const state = view.getUint16(S_STATE, true);
  const blocksHi = is64 ? BigInt(view.getUint32(S_BLOCKS_COUNT_HI, true)) : 0n;
  return {
    blockSize: 1024 << logBlockSize,
    blocksCount: (blocksHi << 32n) | BigInt(view.getUint32(S_BLOCKS_COUNT_LO, true)),
    inodesCount: view.getUint32(S_INODES_COUNT, true),
    blocksPerGroup: view.getUint32(S_BLOCKS_PER_GROUP, true),
    inodesPerGroup: view.getUint32(S_INODES_PER_GROUP, true),
    inodeSize: rev === 0 ? 128 : view.getUint16(S_INODE_SIZE, true),
    firstDataBlock: view.getUint32(S_FIRST_DATA_BLOCK, true),
    descSize: descSize < 32 ? 32 : descSize,
    firstMetaBg: view.getUint32(S_FIRST_META_BG, true),
    featureCompat: compat,
    featureIncompat: incompat,
    featureRoCompat: roCompat,
    uuid,
    checksumSeed: view.getUint32(S_CHECKSUM_SEED, true),
    hasJournal: (compat & COMPAT.hasJournal) !== 0,
    needsRecovery: (incompat & INCOMPAT.recover) !== 0,
    errorsRecorded: (state & 0x2) !== 0,
    metadataCsum: (roCompat & RO_COMPAT.metadataCsum) !== 0,
  };
}

/** Reads and parses the superblock of the filesystem at `offset` bytes into `image`. */
export async function readExtGeometry(image: string, offset = 0): Promise<ExtGeometry> {
  const handle = await open(image, 'r');
  try {
    const buffer = Buffer.alloc(SUPERBLOCK_SIZE);
    const { bytesRead } = await handle.read(buffer, 0, SUPERBLOCK_SIZE, offset + SUPERBLOCK_OFFSET);
    if (bytesRead < SUPERBLOCK_SIZE) {
      throw new TruncatedError(`${image} ends before the ext superblock at byte ${offset + SUPERBLOCK_OFFSET}`, {
        path: image,
        offset: offset + SUPERBLOCK_OFFSET,
        hint: 'check --partition/--offset, or that the image is not truncated',
      });
    }
    return parseExtSuperblock(buffer);
  } finally {
    await handle.close();
  }
}

const FSCK_HINT = (image: string): string => `run \`diskwright fsck --fix ${image}\` first`;

/**
 * Refuses filesystems this layer cannot handle safely: unknown incompat features (read or write),
 * a journal that needs recovery or unknown ro_compat features (write). The errors name the fix.
 */
export function assertExtSupported(geometry: ExtGeometry, image: string, mode: { write: boolean; replayJournal?: boolean }): void {
  const allowed = mode.write ? WRITABLE_INCOMPAT : READABLE_INCOMPAT;
  const unsupported = names(geometry.featureIncompat & ~allowed & ~INCOMPAT.recover, INCOMPAT_NAMES);
  if (unsupported.length > 0) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${image}: ext feature ${unsupported.join(', ')} is not supported for ${mode.write ? 'writing' : 'reading'}`, {
      path: image,
      actual: unsupported,
      hint: `remove the feature with \`tune2fs -O ^${unsupported[0]}\` if possible, or ${FSCK_HINT(image)}`,
    });
  }
  if (geometry.featureRoCompat & RO_COMPAT.bigalloc) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${image}: ext feature bigalloc is not supported (libext2fs in the ext2fs package cannot open it)`, {
      path: image,
      actual: ['bigalloc'],
      hint: 'use host debugfs for this filesystem',
    });
  }
  if (!mode.write) return;
  if (geometry.needsRecovery && !mode.replayJournal) {
    throw new DiskwrightError('E_NEEDS_RECOVERY', `${image}: the ext journal needs recovery (filesystem was not cleanly unmounted); refusing to write`, {
      path: image,
      hint: `${FSCK_HINT(image)}, or pass replayJournal (--replay-journal) to replay it`,
    });
  }
  const unknownRo = names(geometry.featureRoCompat & ~KNOWN_RO_COMPAT, RO_COMPAT_NAMES);
  if (unknownRo.length > 0) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${image}: read-only-compatible feature ${unknownRo.join(', ')} prevents writing`, {
      path: image,
      actual: unknownRo,
      hint: unknownRo.includes('orphan_present') ? FSCK_HINT(image) : 'open the filesystem read-only',
    });
  }
  if (geometry.featureRoCompat & RO_COMPAT.quota) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${image}: writing a filesystem with the quota feature would leave its quota files out of date`, {
      path: image,
      actual: ['quota'],
      hint: 'remove it with `tune2fs -O ^quota` (the guest can re-enable it), or open the filesystem read-only',
    });
  }
  if (geometry.featureRoCompat & RO_COMPAT.readonly) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${image}: the filesystem is marked read-only (feature read-only)`, {
      path: image,
      hint: 'clear it with `tune2fs -O ^read-only` if you mean to write',
    });
  }
  if (geometry.errorsRecorded) {
    throw new DiskwrightError('E_EXTFS', `${image}: the filesystem has errors recorded in its superblock; refusing to write`, {
      path: image,
      hint: FSCK_HINT(image),
    });
  }
}
