/**
 * `mkfs IMAGE --partition N`: a filesystem (ext2/3/4) or a swap signature inside partition N of a
 * partitioned image (raw or qcow2), sized to the partition. In an existing image the change is all-or-nothing:
 * the filesystem is made in a sparse temp file beside the image and lands through the disk
 * layer's commit (the old bytes are recorded first; a kill leaves the old partition). A private
 * image being built (disk build) is written directly.
 */
import { open, rm } from 'node:fs/promises';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import { tempPathBeside } from '../io/atomic.js';
import { dataRuns } from '../io/zero.js';
import type { ProgressCallback } from '../io/progress.js';
import { getPartition, partitionByteRange, readPartitionTable } from '../partition/table.js';
import { commitOverlayInterruptibly } from '../disk/commit.js';
import { Overlay } from '../disk/overlay.js';
import { RawFileDisk } from '../disk/raw.js';
import { openImage } from '../disk/open.js';
import type { DiskFormat } from '../disk/types.js';
import { makeFilesystem, type FilesystemType, type MakeFilesystemOptions } from '../e2fs/mkfs.js';
import { dumpFilesystemHeader } from '../e2fs/dump.js';
import { prepareFill, type FillProgress, type OwnerOption } from './fill.js';
import { encodeSwapSignature, hasSwapSignature, SWAP_PAGE_SIZE } from './swap.js';

export type PartitionFsType = FilesystemType | 'swap';

export interface PartitionFsOptions {
  readonly type: PartitionFsType;
  readonly label?: string;
  readonly uuid?: string;
  /** ext only: fill from this host directory (mke2fs -d, host owners kept). */
  readonly fromDirectory?: string;
  /** ext only: fill from a directory or a tar archive (plain, .gz, .xz, .zst) through the tree hook. */
  readonly from?: string;
  /** Owners for every file copied by `from` (`--owner root`). */
  readonly owner?: OwnerOption;
  /** Files and bytes copied so far by `from`. */
  readonly onFillProgress?: (progress: FillProgress) => void;
  readonly hashSeed?: string;
  readonly fakeTime?: number;
  readonly extendedOptions?: readonly string[];
  /**
   * The image's format (`--format raw|qcow2`); default: diskwright's record, else the qcow2 magic
   * (docs/qcow2.md). The filesystem lands in the guest's partition either way.
   */
  readonly format?: DiskFormat;
  /** Replace a filesystem or swap area already in the partition. */
  readonly force?: boolean;
  /**
   * Write straight into the image (no temp file, no commit record): only for a private image
   * nobody else sees yet, such as the temp output of `disk build`.
   */
  readonly direct?: boolean;
  /** Extra mke2fs options (the tar tree hook, progress parsing). */
  readonly mkfs?: Partial<MakeFilesystemOptions>;
  readonly onProgress?: ProgressCallback;
  /** Called when the made filesystem starts going into the image (the commit: seconds for a big one). */
  readonly onCommit?: () => void;
  readonly signal?: AbortSignal;
}

export interface PartitionFsResult {
  readonly partition: number;
  readonly offset: number;
  /** Bytes of the filesystem or swap area. */
  readonly size: number;
  readonly type: PartitionFsType;
}

const COPY_CHUNK = 4 * 1024 * 1024;

/** What already lives at `offset` (guest bytes, raw or qcow2): an ext filesystem, a swap area, or nothing known. */
async function existingContent(image: string, offset: number, format: { format?: DiskFormat }): Promise<'ext' | 'swap' | undefined> {
  const page = new Uint8Array(SWAP_PAGE_SIZE);
  const disk = openImage(image, { readOnly: true, ...format });
  try {
    disk.read(page, offset);
  } finally {
    disk.close();
  }
  if (hasSwapSignature(page)) return 'swap';
  // ext magic 0xEF53 at 1024 + 56.
  if (page[1080] === 0x53 && page[1081] === 0xef) return (await dumpFilesystemHeader(image, { offset, ...format }).then(() => true, () => false)) ? 'ext' : undefined;
  return undefined;
}

/**
 * Lands a whole new partition content (the temp file) through one commit: old or new after a
 * crash. The image is opened through the block layer, so a qcow2 gets the content as guest bytes
 * (the commit record holds guest bytes too; the partition's old clusters become zero clusters).
 */
async function commitPartition(image: string, offset: number, length: number, content: string | Uint8Array, format: { format?: DiskFormat }, signal?: AbortSignal): Promise<void> {
  const disk = openImage(image, { readOnly: false, ...format });
  try {
    const overlay = new Overlay(disk);
    try {
      if (typeof content === 'string') {
        overlay.discard(offset, length);
        const source = RawFileDisk.open(content, { readOnly: true });
        try {
          const buffer = Buffer.alloc(COPY_CHUNK);
          // Only the content's data extents: its holes (most of a fresh filesystem) are not read.
          for (const extent of source.allocation(0, Math.min(length, source.size))) {
            if (extent.state === 'zero') continue;
            for (let at = extent.position; at < extent.position + extent.length; at += COPY_CHUNK) {
              // A turn of the event loop per 4 MiB: where Ctrl-C arrives (nothing reached the image yet).
              await new Promise<void>((resolve) => setImmediate(resolve));
              throwIfAborted(signal);
              const piece = buffer.subarray(0, Math.min(COPY_CHUNK, extent.position + extent.length - at));
              source.read(piece, at);
              for (const run of dataRuns(piece, piece.length)) overlay.write(piece.subarray(run.start, run.start + run.length), offset + at + run.start);
            }
          }
        } finally {
          source.close();
        }
      } else overlay.write(content, offset);
      await commitOverlayInterruptibly(overlay, signal ? { signal } : {});
    } finally {
      overlay.close();
    }
  } finally {
    disk.close();
  }
}

/** How often fill progress is polled from the worker's shared counters. */
const PROGRESS_MS = 200;

/**
 * Runs `fn` with mke2fs options that read `options.from` (a directory or tar archive) through the
 * tree hook, reporting files and bytes while it runs; without `from`, `fn` gets `base` unchanged.
 */
export async function withFill<T>(near: string, options: { readonly from?: string; readonly owner?: OwnerOption; readonly onFillProgress?: (p: FillProgress) => void; readonly signal?: AbortSignal }, base: MakeFilesystemOptions, fn: (mkfs: MakeFilesystemOptions, reportFill: () => void) => Promise<T>): Promise<T> {
  if (options.from === undefined) {
    if (options.owner !== undefined && base.fromDirectory !== undefined) {
      return withFill(near, { ...options, from: base.fromDirectory }, { ...base, fromDirectory: undefined } as MakeFilesystemOptions, fn);
    }
    return fn(base, () => undefined);
  }
  const fill = await prepareFill(options.from, { near, ...(options.owner ? { owner: options.owner } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  const report = options.onFillProgress;
  const timer = report ? setInterval(() => report(fill.progress()), PROGRESS_MS) : undefined;
  try {
    const result = await fn({ ...base, fromDirectory: fill.root, treeFactory: fill.treeFactory }, () => report?.(fill.progress()));
    report?.(fill.progress());
    return result;
  } finally {
    if (timer) clearInterval(timer);
    await fill.cleanup();
  }
}

/**
 * Makes a filesystem or swap area filling partition `number` of `image`. Throws E_EXISTS when the
 * partition already holds one (unless `force`), E_NO_PARTITION for a missing number.
 */
export async function makeFilesystemInPartition(image: string, number: number, options: PartitionFsOptions): Promise<PartitionFsResult> {
  if (options.direct && options.format === 'qcow2') throw new DiskwrightError('E_INVALID_ARGUMENT', 'a direct mkfs --partition writes a raw image only', { path: image });
  const format = options.format ? { format: options.format } : {};
  const table = await readPartitionTable(image, format);
  const partition = getPartition(table, number);
  if (partition.kind === 'extended') {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `partition ${number} of ${image} is the extended partition: it holds logical partitions, not a filesystem`, {
      path: image,
      hint: 'pick a primary or logical partition (`diskwright partitions IMAGE` lists them)',
    });
  }
  const range = partitionByteRange(table, partition);
  const offset = Number(range.offset);
  const length = Number(range.length);
  if (!options.force && !options.direct) {
    const existing = await existingContent(image, offset, format);
    if (existing) {
      throw new DiskwrightError('E_EXISTS', `partition ${number} of ${image} already holds ${existing === 'ext' ? 'an ext filesystem' : 'a swap area'}`, { path: image, hint: 'pass --force to replace it' });
    }
  }
  if (options.type === 'swap') {
    if (options.fromDirectory !== undefined || options.from !== undefined) throw new DiskwrightError('E_USAGE', 'a swap area cannot be filled from a directory', { hint: 'drop --from for --type swap' });
    const page = encodeSwapSignature(length, { ...(options.uuid !== undefined ? { uuid: options.uuid } : {}), ...(options.label !== undefined ? { label: options.label } : {}) });
    if (options.direct) {
      const handle = await open(image, 'r+');
      try {
        await handle.write(page, 0, page.length, offset);
      } finally {
        await handle.close();
      }
    } else {
      options.onCommit?.();
      await commitPartition(image, offset, length, page, format, options.signal);
    }
    return { partition: number, offset, size: Math.floor(length / SWAP_PAGE_SIZE) * SWAP_PAGE_SIZE, type: 'swap' };
  }
  // mke2fs takes the size in KiB.
  const size = Math.floor(length / 1024) * 1024;
  const mkfsOptions: MakeFilesystemOptions = {
    ...options.mkfs,
    type: options.type,
    size,
    force: true,
    ...(options.label !== undefined ? { label: options.label } : {}),
    ...(options.uuid !== undefined ? { uuid: options.uuid } : {}),
    ...(options.fromDirectory !== undefined ? { fromDirectory: options.fromDirectory } : {}),
    ...(options.hashSeed !== undefined ? { hashSeed: options.hashSeed } : {}),
    ...(options.fakeTime !== undefined ? { fakeTime: options.fakeTime } : {}),
    ...(options.extendedOptions ? { extendedOptions: options.extendedOptions } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  await withFill(image, options, mkfsOptions, async (withSource, reportFill) => {
    if (options.direct) {
      await makeFilesystem(image, { ...withSource, offset });
    } else {
      const temp = tempPathBeside(image);
      try {
        await makeFilesystem(temp, withSource);
        // The fill's final figures, then the commit as the step that runs.
        reportFill();
        options.onCommit?.();
        await commitPartition(image, offset, size, temp, format, options.signal);
      } finally {
        await rm(temp, { force: true });
      }
    }
  });
  return { partition: number, offset, size, type: options.type };
}
