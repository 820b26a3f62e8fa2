import { stat } from 'node:fs/promises';
import { openImage, type DiskFormat } from '../disk/index.js';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { getPartition, partitionByteRange, readPartitionTable } from '../partition/index.js';

/** Where a filesystem lives: the whole image, or a partition of it (guest bytes of a qcow2). */
export interface FilesystemPlace {
  readonly image: string;
  /** Byte offset of the filesystem (0 for a whole-image filesystem). */
  readonly offset: bigint;
  /** Bytes available to the filesystem (the partition, or the whole image: a qcow2's virtual size). */
  readonly length: bigint;
  readonly partition?: number;
}

/** Parses a `--partition` value (1, 2, … 5+ for logical partitions). */
export function parsePartitionNumber(text: string): number {
  if (!/^[1-9]\d{0,3}$/.test(text)) {
    throw new InvalidArgumentError(`Expected \`--partition\` to be a partition number like 1 or 5, got \`${text}\``, {
      hint: 'diskwright partitions IMAGE lists the numbers',
    });
  }
  return Number(text);
}

/**
 * Finds the filesystem of `image`: the whole image, or partition `partition` of its table (MBR with
 * logical partitions, or GPT), read through the block layer (`format` forces raw or qcow2).
 */
export async function findFilesystem(image: string, partition?: number, options: { readonly format?: DiskFormat } = {}): Promise<FilesystemPlace> {
  const info = await stat(image).catch((error: NodeJS.ErrnoException) => {
    throw new DiskwrightError(error.code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot open image ${image}: ${error.code ?? error.message}`, {
      path: image,
      hint: 'check the image path',
      cause: error,
    });
  });
  if (!info.isFile()) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `${image} is not a regular file`, { path: image, hint: 'pass a raw disk or filesystem image file' });
  }
  const disk = openImage(image, { readOnly: true, ...(options.format ? { format: options.format } : {}) });
  const size = disk.size;
  disk.close();
  if (partition === undefined) return { image, offset: 0n, length: BigInt(size) };
  const table = await readPartitionTable(image, options.format ? { format: options.format } : {});
  const part = getPartition(table, partition);
  if (part.kind === 'extended') {
    throw new InvalidArgumentError(`partition ${partition} of ${image} is an extended partition (a container, no filesystem)`, {
      hint: 'name a logical partition (5, 6, …) instead',
    });
  }
  const range = partitionByteRange(table, part);
  return { image, offset: range.offset, length: range.length, partition };
}
