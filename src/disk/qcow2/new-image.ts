import { DiskwrightError } from '../../errors.js';
import { withAtomicPath } from '../../io/atomic.js';
import { recordFormat } from '../format-record.js';
import { openImage, resolveFormat } from '../open.js';
import type { DiskFormat } from '../types.js';
import { createQcow2, DEFAULT_CLUSTER_SIZE } from './create.js';
import { resolveBacking } from './image.js';

export interface CreateQcow2ImageOptions {
  /** Virtual size; default: the backing file's size. */
  readonly size?: number;
  readonly clusterSize?: number;
  /** Backing file as it will be stored; relative names are relative to the new image's directory. */
  readonly backingFile?: string;
  /** Default: the format diskwright recorded on the backing file, else its magic. */
  readonly backingFormat?: DiskFormat;
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
}

export interface CreatedQcow2 {
  readonly size: number;
  readonly clusterSize: number;
  readonly backingFile?: string;
  readonly backingFormat?: DiskFormat;
}

/**
 * `create --format qcow2`: a new qcow2 image, atomically, marked as diskwright's (so its backing
 * chain is trusted later without --format). A backing file is opened once, through the same
 * rules, to check it and to take its size.
 */
export async function createQcow2Image(path: string, options: CreateQcow2ImageOptions): Promise<CreatedQcow2> {
  let size = options.size;
  let backingFormat = options.backingFormat;
  if (options.backingFile !== undefined) {
    const backingPath = resolveBacking(path, options.backingFile);
    backingFormat ??= resolveFormat(backingPath, undefined).format;
    // The user named this backing file: its own chain is trusted as if --format had been given.
    const backing = openImage(backingPath, { format: backingFormat, readOnly: true });
    try {
      size ??= backing.size;
    } finally {
      backing.close();
    }
  }
  if (size === undefined) throw new DiskwrightError('E_USAGE', 'a qcow2 image needs --size or --backing', { hint: 'e.g. --size 10G' });
  const clusterSize = options.clusterSize ?? DEFAULT_CLUSTER_SIZE;
  await withAtomicPath(
    path,
    async (temp) => {
      createQcow2(temp, { size: size!, clusterSize, backingFile: options.backingFile, backingFormat });
      recordFormat(temp, 'qcow2');
    },
    { overwrite: options.overwrite, signal: options.signal },
  );
  return { size: Math.ceil(size / 512) * 512, clusterSize, ...(options.backingFile === undefined ? {} : { backingFile: options.backingFile, backingFormat }) };
}
