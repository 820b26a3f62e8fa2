import { BadSignatureError, DiskwrightError, LimitError } from '../errors.js';
import { featureNames, INCOMPAT, parseSuperblock, readSuperblock, RO_COMPAT, type Superblock } from '../extmeta/index.js';

/** Incompat features libext2fs 1.44.1 (the `ext2fs` npm package) reads and writes correctly. */
const WRITABLE_INCOMPAT =
  INCOMPAT.filetype | INCOMPAT.needs_recovery | INCOMPAT.meta_bg | INCOMPAT.extent | INCOMPAT['64bit'] | INCOMPAT.flex_bg |
  INCOMPAT.ea_inode | INCOMPAT.metadata_csum_seed | INCOMPAT.large_dir | INCOMPAT.inline_data;
/** Incompat features it can at least read (names are opaque with encrypt). */
const READABLE_INCOMPAT = WRITABLE_INCOMPAT | INCOMPAT.encrypt | INCOMPAT.mmp;
/** ro_compat features known to libext2fs 1.44.1: sparse_super … project (0x1..0x2000 minus 0x4/0x80/0x800). */
const KNOWN_RO_COMPAT =
  RO_COMPAT.sparse_super | RO_COMPAT.large_file | RO_COMPAT.huge_file | RO_COMPAT.uninit_bg | RO_COMPAT.dir_nlink |
  RO_COMPAT.extra_isize | RO_COMPAT.quota | RO_COMPAT.bigalloc | RO_COMPAT.metadata_csum | RO_COMPAT.read_only | RO_COMPAT.project;

/**
 * What file operations need to know about an ext filesystem: a view of extmeta's
 * {@link Superblock} (one parser for the whole project) with the raw uuid bytes the checksums use.
 */
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

function geometryOf(sb: Superblock): ExtGeometry {
  return {
    blockSize: sb.blockSize,
    blocksCount: sb.blocksCount,
    inodesCount: sb.inodesCount,
    blocksPerGroup: sb.blocksPerGroup,
    inodesPerGroup: sb.inodesPerGroup,
    inodeSize: sb.inodeSize,
    firstDataBlock: sb.firstDataBlock,
    descSize: sb.descSize,
    firstMetaBg: sb.firstMetaBg,
    featureCompat: sb.featureCompat,
    featureIncompat: sb.featureIncompat,
    featureRoCompat: sb.featureRoCompat,
    uuid: Uint8Array.from(Buffer.from(sb.uuid.replaceAll('-', ''), 'hex')),
    checksumSeed: sb.checksumSeed,
    hasJournal: sb.hasJournal,
    needsRecovery: sb.needsRecovery,
    errorsRecorded: sb.state.errors,
    metadataCsum: (sb.featureRoCompat & RO_COMPAT.metadata_csum) !== 0,
  };
}

/**
 * extmeta's errors in the words of the fs commands: geometry outside the ranges ext allows is a
 * damaged filesystem (E_EXTFS), not a size limit; a missing magic usually means a whole disk.
 */
function asExtError(error: unknown): unknown {
  if (error instanceof LimitError) {
    return new DiskwrightError('E_EXTFS', error.message, { offset: error.offset, actual: error.actual, hint: 'the superblock is damaged: check --partition/--offset, or repair it with `diskwright fsck --fix`', cause: error });
  }
  if (error instanceof BadSignatureError) {
    return new BadSignatureError(error.message, { offset: error.offset, expected: error.expected, actual: error.actual, hint: 'pass --partition N for a disk image with a partition table', cause: error });
  }
  return error;
}

/** Parses the 1024-byte superblock with extmeta's parser (pure; the input is not modified). */
export function parseExtSuperblock(sb: Uint8Array): ExtGeometry {
  try {
    return geometryOf(parseSuperblock(sb));
  } catch (error) {
    throw asExtError(error);
  }
}

/** Reads and parses the superblock of the filesystem at `offset` bytes into `image`. */
export async function readExtGeometry(image: string, offset = 0): Promise<ExtGeometry> {
  try {
    return geometryOf(await readSuperblock(image, { offset }));
  } catch (error) {
    throw asExtError(error);
  }
}

const FSCK_HINT = (image: string): string => `run \`diskwright fsck --fix ${image}\` first`;

/**
 * Refuses filesystems this layer cannot handle safely: unknown incompat features (read or write),
 * a journal that needs recovery or unknown ro_compat features (write). The errors name the fix.
 */
export function assertExtSupported(geometry: ExtGeometry, image: string, mode: { write: boolean; replayJournal?: boolean }): void {
  const allowed = mode.write ? WRITABLE_INCOMPAT : READABLE_INCOMPAT;
  const unsupported = featureNames(0, geometry.featureIncompat & ~allowed & ~INCOMPAT.needs_recovery, 0);
  if (unsupported.length > 0) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${image}: ext feature ${unsupported.join(', ')} is not supported for ${mode.write ? 'writing' : 'reading'}`, {
      path: image,
      actual: unsupported,
      hint: `remove the feature with \`tune2fs -O ^${unsupported[0]}\` if possible, or ${FSCK_HINT(image)}`,
    });
  }
  if (geometry.featureRoCompat & RO_COMPAT.bigalloc) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${image}: ext feature bigalloc is not supported (diskwright's filesystem editor cannot open it)`, {
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
  const unknownRo = featureNames(0, 0, geometry.featureRoCompat & ~KNOWN_RO_COMPAT);
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
  if (geometry.featureRoCompat & RO_COMPAT.read_only) {
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
