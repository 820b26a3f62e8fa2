import { open } from 'node:fs/promises';
import { openImage, type Disk, type DiskFormat } from '../disk/index.js';
import { DiskwrightError, InvalidArgumentError, throwIfAborted } from '../errors.js';
import { getPartition, planPartitionResize, readDiskPartitionTable, readPartitionTable, type PlanReader } from '../partition/index.js';
import type { PartitionTable } from '../partition/index.js';
import { growOnOverlay, type GrowResult } from './grow.js';
import { changeInPlace } from './in-place.js';
import type { PassCallback } from './progress.js';
import { dumpFilesystemHeader, headerNeedsRecovery } from './dump.js';

/** GPT entry size assumed when the table does not say (UEFI 2.x: 128 bytes). */
const GPT_ENTRY_BYTES = 128n;
/** GPT entries counted when the table does not say (the usual array). */
const GPT_DEFAULT_ENTRIES = 128n;

export interface ResizeImageOptions {
  /** New size of the image file in bytes. */
  readonly size: number;
  /** Grow this partition (the last one on the disk; a logical one included) and its filesystem. */
  readonly partition?: number;
  readonly fakeTime?: number;
  readonly signal?: AbortSignal;
  /** resize2fs's passes as they run. */
  readonly onPass?: PassCallback;
  /**
   * The image's format (`--format raw|qcow2`); default: diskwright's record, else the qcow2 magic.
   * A qcow2's virtual size is what is resized (the file grows only by the clusters written).
   */
  readonly format?: DiskFormat;
}

export interface ResizeImageResult extends GrowResult {
  readonly imageSize: number;
  readonly oldImageSize: number;
  readonly offset: bigint;
  readonly partition?: number;
  /** New partition length in sectors (with `partition`). */
  readonly partitionSectors?: bigint;
}

/**
 * Refuses, before the image or partition table is touched, what resize2fs would refuse after:
 * a journal that needs recovery, a filesystem not marked clean, one mounted since its last check.
 */
export function assertResizable(image: string, fields: Readonly<Record<string, string>>): void {
  if (headerNeedsRecovery(fields)) {
    throw new DiskwrightError('E_NEEDS_RECOVERY', `the journal of ${image} needs recovery; refusing to resize before it is replayed`, {
      path: image,
      hint: 'run `diskwright fsck --fix IMAGE` first (it replays the journal)',
    });
  }
  const state = fields['Filesystem state'] ?? '';
  const mounted = Date.parse(fields['Last mount time'] ?? '');
  const checked = Date.parse(fields['Last checked'] ?? '');
  if (state !== 'clean' || (Number.isFinite(mounted) && Number.isFinite(checked) && checked < mounted)) {
    throw new DiskwrightError('E_EXTFS', `the filesystem in ${image} is not known clean (state: ${state || 'unknown'}); refusing to resize it`, {
      path: image,
      hint: 'run `diskwright fsck --fix IMAGE` first',
    });
  }
}

/** Sectors the last partition may span when the disk has `diskSectors` sectors. */
export function maxPartitionSectors(table: PartitionTable, start: bigint, diskSectors: bigint): bigint {
  if (table.label === 'dos') return diskSectors - start;
  const ss = BigInt(table.sectorSize);
  const entries = BigInt(table.entryCount ?? Number(GPT_DEFAULT_ENTRIES));
  const arraySectors = (entries * GPT_ENTRY_BYTES + ss - 1n) / ss;
  // The backup entry array and header occupy the last arraySectors + 1 sectors.
  const lastUsable = diskSectors - 2n - arraySectors;
  return lastUsable - start + 1n;
}

/** Shrinks the image after its filesystem was shrunk: the file, or a qcow2's virtual size. */
async function setImageSize(image: string, size: number, format: DiskFormat | undefined): Promise<void> {
  const disk = openImage(image, { readOnly: false, ...(format ? { format } : {}) });
  if (disk.format !== 'raw') {
    try {
      disk.resize!(size);
      disk.flush();
    } finally {
      disk.close();
    }
    return;
  }
  disk.close();
  const handle = await open(image, 'r+');
  try {
    await handle.truncate(size);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A Disk as the FileHandle-shaped reader the partition code reads tables with. */
function diskReader(disk: Disk): PlanReader {
  const read = async (buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Uint8Array }> => {
    const n = Math.max(0, Math.min(length, disk.size - position));
    if (n > 0) disk.read(buffer.subarray(offset, offset + n), position);
    return { bytesRead: n, buffer };
  };
  return { read } as unknown as PlanReader;
}

/**
 * Resizes a whole image: the file, then (with `partition`) the partition entry — and for a logical
 * partition its EBR and the extended container — then the filesystem. All three are staged in one
 * copy-on-write overlay and committed together (src/disk/commit.ts): after a kill -9 or a failure
 * the image is the old one or the new one. Shrinking is done only for a whole-image filesystem and
 * only as far as resize2fs allows (the filesystem is committed first, then the file truncated); a
 * partition is never shrunk.
 */
export async function resizeImage(image: string, options: ResizeImageOptions): Promise<ResizeImageResult> {
  const { size } = options;
  if (!Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0) {
    throw new InvalidArgumentError(`Expected the new image size to be a positive multiple of 512 bytes, got \`${size}\``);
  }
  const format = options.format ? { format: options.format } : {};
  const probe = openImage(image, { readOnly: true, ...format });
  const oldImageSize = probe.size;
  probe.close();
  const common = { ...(options.fakeTime !== undefined ? { fakeTime: options.fakeTime } : {}), ...(options.signal ? { signal: options.signal } : {}), ...format };
  const passes = options.onPass ? { onPass: options.onPass } : {};
  const inPlace = { ...(options.signal ? { signal: options.signal } : {}), ...format };
  throwIfAborted(options.signal);

  if (options.partition === undefined) {
    assertResizable(image, await dumpFilesystemHeader(image, common)); // refuse before anything is staged
    if (size < oldImageSize) {
      const { value: grown } = await changeInPlace(image, inPlace, async (overlay) => ({ value: await growOnOverlay(overlay, image, { ...common, ...passes, size, allowShrink: true }), commit: true }));
      await setImageSize(image, size, options.format);
      return { ...grown, imageSize: size, oldImageSize, offset: 0n };
    }
    const { value: grown } = await changeInPlace(image, inPlace, async (overlay) => {
      overlay.resize(size);
      return { value: await growOnOverlay(overlay, image, { ...common, ...passes }), commit: true };
    });
    return { ...grown, imageSize: size, oldImageSize, offset: 0n };
  }

  const number = options.partition;
  if (size < oldImageSize) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `refusing to shrink ${image} from ${oldImageSize} to ${size} bytes: partitions are only grown`, {
      path: image,
      expected: `>= ${oldImageSize}`,
      actual: size,
      hint: 'give a size at least as large as the image',
    });
  }
  const table = await readPartitionTable(image, format);
  const part = getPartition(table, number);
  const ss = BigInt(table.sectorSize);
  if (BigInt(size) % ss !== 0n) throw new InvalidArgumentError(`Expected the new image size to be a multiple of the ${ss}-byte sector size, got \`${size}\``);
  const newSectors = maxPartitionSectors(table, part.start, BigInt(size) / ss);
  if (newSectors < part.size) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `partition ${number} cannot grow: at ${size} bytes the image leaves it ${newSectors} sectors, it has ${part.size}`, {
      path: image,
      hint: 'give a larger size',
    });
  }
  const offset = part.start * ss;
  assertResizable(image, await dumpFilesystemHeader(image, { ...common, offset }));
  const { value: grown } = await changeInPlace(image, inPlace, async (overlay) => {
    overlay.resize(size);
    // The table as it reads on the grown disk, and its new sectors, staged in the same overlay.
    const reader = diskReader(overlay);
    const grownTable = readDiskPartitionTable(overlay);
    for (const write of await planPartitionResize(reader, grownTable, number, newSectors, image)) overlay.write(write.bytes, Number(write.offset));
    return { value: await growOnOverlay(overlay, image, { ...common, ...passes, offset, size: Number(newSectors * ss) }), commit: true };
  });
  return { ...grown, imageSize: size, oldImageSize, offset, partition: number, partitionSectors: newSectors };
}
