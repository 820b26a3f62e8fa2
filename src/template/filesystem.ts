import { DiskwrightError } from '../errors.js';
import type { FilesystemSession, OpenFilesystemOptions } from '../ext/types.js';

type WithFilesystem = <T>(image: string, options: OpenFilesystemOptions, fn: (fs: FilesystemSession) => Promise<T>) => Promise<T>;

/**
 * Opens a filesystem through the ext area's `withFilesystem` (looked up at call time while that
 * area lands; the contract is in contracts.md).
 */
export async function openFilesystem<T>(
  image: string,
  options: OpenFilesystemOptions,
  fn: (fs: FilesystemSession) => Promise<T>,
): Promise<T> {
  const ext = (await import('../ext/index.js')) as unknown as { withFilesystem?: WithFilesystem };
  if (typeof ext.withFilesystem !== 'function') {
    throw new DiskwrightError('E_EXTFS', 'in-image editing (withFilesystem) is not available in this build');
  }
  return ext.withFilesystem(image, options, fn);
}

/** The superblock facts a template manifest records. */
export interface FilesystemFacts {
  readonly kind: 'ext2' | 'ext3' | 'ext4';
  readonly uuid: string;
  readonly blockSize: number;
  readonly blocksCount: number;
}

interface SuperblockLike {
  readonly kind: 'ext2' | 'ext3' | 'ext4';
  readonly uuid: string;
  readonly blockSize: number;
  readonly blocksCount: bigint | number;
}

/** Reads kind, UUID and size of the ext filesystem in `image` (extmeta's pure parser). */
export async function readFilesystemFacts(image: string): Promise<FilesystemFacts> {
  const extmeta = (await import('../extmeta/index.js')) as unknown as {
    readSuperblock?: (image: string, options?: { offset?: number }) => Promise<SuperblockLike>;
  };
  if (typeof extmeta.readSuperblock !== 'function') {
    throw new DiskwrightError('E_EXTFS', 'superblock parsing (readSuperblock) is not available in this build');
  }
  const sb = await extmeta.readSuperblock(image);
  return { kind: sb.kind, uuid: sb.uuid, blockSize: sb.blockSize, blocksCount: Number(sb.blocksCount) };
}
