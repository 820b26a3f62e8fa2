import { DiskwrightError } from '../../errors.js';
import { withAtomicPath } from '../../io/atomic.js';
import { refuseBlocking } from '../file-kind.js';
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
  /**
   * Default: the format diskwright recorded on the backing file; else raw when it has no qcow2
   * magic. A backing file that only looks like a qcow2 is refused (E_UNTRUSTED_BACKING) unless
   * this says so: the new image would otherwise follow the backing files its header names.
   */
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
    refuseBlocking(backingPath, { name: `backing file ${options.backingFile}`, hint: 'pass the path of a disk image file' });
    if (backingFormat === undefined) {
      const resolved = resolveFormat(backingPath, undefined);
      // Only the magic says qcow2: a raw disk a guest wrote a qcow2 header into (naming, say,
      // /etc/shadow as its backing file) looks exactly like this. Recording the guess in the new
      // image's header would make every later open trust that chain (docs/qcow2.md, "The
      // backing-file rule"), so the user has to say it; qemu-img too refuses -b without -F.
      if (resolved.source === 'probed' && resolved.format === 'qcow2') {
        throw new DiskwrightError('E_UNTRUSTED_BACKING', `backing file ${options.backingFile} looks like a qcow2 image, but nothing says it is one`, {
          path: backingPath,
          hint: 'if it is, pass --backing-format qcow2 (the backing files its header names are then read through it); if it is a raw disk, --backing-format raw',
        });
      }
      backingFormat = resolved.format;
    }
    // The user named this backing file and its format (or diskwright recorded it): its own chain
    // is trusted as if --format had been given.
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
