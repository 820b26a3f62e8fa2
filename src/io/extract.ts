import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { readUsedBlockRanges } from '../extmeta/index.js';
import { getPartition, partitionByteRange, readPartitionTable } from '../partition/index.js';
import { assertInside, copyJobToFile, type CopyOptions, type CopySummary } from './copy.js';
import { alignExtents, type Extent } from './extents.js';
import { HOLE_BLOCK } from './zero.js';
import { openImage } from '../disk/open.js';
import { PartitionWindow } from '../disk/window.js';
import type { Disk, DiskFormat } from '../disk/types.js';

/** Options of {@link extractPartition}. */
export interface ExtractOptions extends CopyOptions {
  /**
   * Copy only the blocks an ext2/3/4 filesystem has allocated (from its block bitmaps); the rest
   * of the output is holes. The result is an equivalent filesystem, not a byte-identical copy:
   * stale bytes in free blocks become zeros.
   */
  readonly onlyUsed?: boolean;
  /** The image's format (`--format`); default: docs/qcow2.md's rule. */
  readonly format?: DiskFormat;
}

/** What {@link extractPartition} did. */
export interface ExtractSummary extends CopySummary {
  readonly partition: number;
  /** Partition start in the image, bytes. */
  readonly offset: number;
  /** `full`: byte-identical; `only-used`: allocated ext blocks only. */
  readonly mode: 'full' | 'only-used';
}

/**
 * Writes partition `partitionNumber` of `imagePath` (raw or qcow2, read through the block layer)
 * to `outPath` as a raw file (atomic, sparse, format recorded). By default the output is
 * byte-identical to `dd if=IMAGE of=OUT skip=START count=SIZE bs=512` of the raw disk; with
 * `onlyUsed` see {@link ExtractOptions.onlyUsed}.
 */
export async function extractPartition(imagePath: string, partitionNumber: number, outPath: string, options: ExtractOptions = {}): Promise<ExtractSummary> {
  if (!Number.isSafeInteger(partitionNumber) || partitionNumber < 1) {
    throw new InvalidArgumentError(`Expected \`partition\` to be a partition number (1, 2, … 5 for the first logical), got \`${partitionNumber}\``);
  }
  const table = await readPartitionTable(imagePath, options.format ? { format: options.format } : {});
  const partition = getPartition(table, partitionNumber);
  const range = partitionByteRange(table, partition);
  const offset = Number(range.offset);
  const length = Number(range.length);
  // Every format through the block layer: a qcow2 partition is a window of the qcow2 Disk.
  const disk = openImage(imagePath, { ...(options.format ? { format: options.format } : {}), readOnly: true });
  try {
    assertInside(disk, imagePath, offset, length);
    const readExtents = options.onlyUsed ? await usedExtents(disk, partitionNumber, offset, length) : undefined;
    const summary = await copyJobToFile(
      // diskwright made OUT raw: it is never reinterpreted as qcow2 later (docs/qcow2.md).
      { path: outPath, format: 'raw' },
      (source) => ({ source, offset, length, readExtents }),
      disk,
      options,
    );
    return { ...summary, partition: partitionNumber, offset, mode: options.onlyUsed ? 'only-used' : 'full' };
  } finally {
    disk.close();
  }
}

async function usedExtents(disk: Disk, partitionNumber: number, offset: number, length: number): Promise<Extent[]> {
  let ranges;
  try {
    ranges = await readUsedBlockRanges(new PartitionWindow(disk, offset, length));
  } catch (error) {
    if (error instanceof DiskwrightError && error.code === 'E_BAD_SIGNATURE') {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `--only-used needs an ext2/3/4 filesystem, and partition ${partitionNumber} holds none`, {
        hint: 'extract without --only-used (a full, byte-identical copy)',
        cause: error,
      });
    }
    throw error;
  }
  const extents = ranges.map((r) => ({ start: Number(r.start), length: Number(r.length) }));
  const last = extents[extents.length - 1];
  if (last && last.start + last.length > length) {
    throw new DiskwrightError('E_EXTFS', `the filesystem in partition ${partitionNumber} is larger than the partition (${last.start + last.length} > ${length} bytes)`, {
      hint: 'the partition table or the filesystem is damaged; extract without --only-used',
    });
  }
  // Whole 4 KiB blocks: holes in the output have that granularity anyway.
  return alignExtents(extents, HOLE_BLOCK);
}
