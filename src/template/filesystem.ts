import { withFilesystem } from '../ext/index.js';
import type { FilesystemSession, OpenFilesystemOptions } from '../ext/types.js';
import { readSuperblock } from '../extmeta/index.js';

/** Opens a filesystem for the template operations (the ext area's session; always closed). */
export function openFilesystem<T>(image: string, options: OpenFilesystemOptions, fn: (fs: FilesystemSession) => Promise<T>): Promise<T> {
  return withFilesystem(image, options, fn);
}

/** The superblock facts a template manifest records. */
export interface FilesystemFacts {
  readonly kind: 'ext2' | 'ext3' | 'ext4';
  readonly uuid: string;
  /** The volume label ('' when none); fstab entries may name the root by it. */
  readonly label?: string;
  readonly blockSize: number;
  readonly blocksCount: number;
}

/** Reads kind, UUID and size of the ext filesystem in `image` (pure superblock parse). */
export async function readFilesystemFacts(image: string): Promise<FilesystemFacts> {
  const sb = await readSuperblock(image);
  return { kind: sb.kind, uuid: sb.uuid, label: sb.label, blockSize: sb.blockSize, blocksCount: Number(sb.blocksCount) };
}
