/** Label detection and the public read API. */
import { stat } from 'node:fs/promises';
import { openImage } from '../disk/open.js';
import type { Disk, DiskFormat } from '../disk/types.js';
import { DiskwrightError, TruncatedError } from '../errors.js';
import { readDosTable } from './dos.js';
import { GptUnreadableError, readGptTable } from './gpt-table.js';
import { GPT_PROTECTIVE_TYPE, MBR_SECTOR_SIZE, parseMbr } from './mbr.js';
import { runOnBytes, runOnDisk, type TableReader } from './source.js';
import type { Partition, PartitionTable } from './types.js';

/** Reads whichever label the image carries: GPT when the MBR has a protective 0xEE entry, else dos. */
export function* readTable(diskSize: bigint): TableReader<PartitionTable> {
  const sector = yield { offset: 0n, length: MBR_SECTOR_SIZE };
  if (sector.length < MBR_SECTOR_SIZE) {
    throw new TruncatedError(`the image is ${diskSize} bytes, too short to hold a partition table (${MBR_SECTOR_SIZE} bytes at least)`, {
      expected: MBR_SECTOR_SIZE,
      actual: sector.length,
      hint: 'the image looks truncated; check the download or copy that produced it',
    });
  }
  if (!hasBootSignature(sector)) {
    const label = yield* otherLabel(sector);
    if (label !== undefined) {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `unsupported label type ${label}: diskwright reads dos (MBR) and gpt partition tables`, {
        hint: `\`sfdisk -l IMAGE\` lists ${label} labels`,
      });
    }
  }
  const mbr = parseMbr(sector);
  if (mbr.entries.some((e) => e.type === GPT_PROTECTIVE_TYPE)) {
    try {
      return yield* readGptTable(diskSize);
    } catch (error) {
      // sfdisk then lists the protective MBR as a dos label (one 0xEE partition); so do we.
      if (!(error instanceof GptUnreadableError)) throw error;
      const dos = yield* readDosTable(mbr, diskSize);
      return { ...dos, warnings: [`${error.message}; the protective MBR is listed as a dos label, as sfdisk does`, ...dos.warnings] };
    }
  }
  return yield* readDosTable(mbr, diskSize);
}

function hasBootSignature(sector: Uint8Array): boolean {
  return sector[510] === 0x55 && sector[511] === 0xaa;
}

/** Sun (0xDABE at byte 508), SGI (0x0BE5A941 at byte 0) and BSD (0x82564557 in sector 1) labels: libfdisk's magics. */
function* otherLabel(sector: Uint8Array): TableReader<string | undefined> {
  const view = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  if (view.getUint16(508, false) === 0xdabe) return 'sun';
  if (view.getUint32(0, false) === 0x0be5a941) return 'sgi';
  const BSD_MAGIC = 0x82564557;
  if (view.getUint32(64, true) === BSD_MAGIC) return 'bsd';
  const next = yield { offset: BigInt(MBR_SECTOR_SIZE), length: MBR_SECTOR_SIZE };
  if (next.length >= 4 && new DataView(next.buffer, next.byteOffset, next.byteLength).getUint32(0, true) === BSD_MAGIC) return 'bsd';
  return undefined;
}

/** Parses the partition table of an image held in memory (pure). */
export function parsePartitionTable(image: Uint8Array): PartitionTable {
  return runOnBytes(readTable(BigInt(image.length)), image);
}

/** Reads the partition table of a Disk (raw, qcow2's virtual disk …), reading only the sectors it needs. */
export function readDiskPartitionTable(disk: Disk): PartitionTable {
  return runOnDisk(readTable(BigInt(disk.size)), disk);
}

/**
 * Reads the partition table of an image file through the block layer (`openImage`: raw, or qcow2
 * by diskwright's record, the magic or `format`), reading only the sectors it needs.
 */
export async function readPartitionTable(imagePath: string, options: { readonly format?: DiskFormat } = {}): Promise<PartitionTable> {
  let info;
  try {
    info = await stat(imagePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DiskwrightError('E_NOT_FOUND', `${imagePath}: no such file`, { path: imagePath, cause: error });
    throw new DiskwrightError('E_IO', `cannot open ${imagePath}: ${(error as Error).message}`, { path: imagePath, cause: error });
  }
  if (!info.isFile()) {
    // Block devices report size 0 through stat; Node has no BLKGETSIZE64, so only image files are read.
    throw new DiskwrightError('E_INVALID_ARGUMENT', `${imagePath} is not a regular file (diskwright reads raw disk image files)`, {
      path: imagePath,
      hint: 'pass the path of a raw image file; for a block device, copy it to an image first',
    });
  }
  let disk: Disk | undefined;
  try {
    disk = openImage(imagePath, { readOnly: true, ...(options.format ? { format: options.format } : {}) });
    return readDiskPartitionTable(disk);
  } catch (error) {
    if (error instanceof DiskwrightError && error.path === undefined) {
      throw new DiskwrightError(error.code, `${imagePath}: ${error.message}`, {
        path: imagePath,
        offset: error.offset,
        expected: error.expected,
        actual: error.actual,
        hint: error.hint,
        cause: error,
      });
    }
    throw error;
  } finally {
    disk?.close();
  }
}

/** The partition numbered `number`; throws E_NO_PARTITION naming the numbers that exist. */
export function getPartition(table: PartitionTable, number: number): Partition {
  const found = table.partitions.find((p) => p.number === number);
  if (found) return found;
  const numbers = table.partitions.map((p) => p.number);
  throw new DiskwrightError('E_NO_PARTITION', `no partition ${number} in this ${table.label} table (partitions: ${numbers.length > 0 ? numbers.join(', ') : 'none'})`, {
    expected: numbers,
    actual: number,
    hint: 'run `diskwright partitions IMAGE` to list them',
  });
}

/** Byte offset and length of a partition inside the image. */
export function partitionByteRange(table: PartitionTable, partition: Partition): { offset: bigint; length: bigint } {
  const ss = BigInt(table.sectorSize);
  return { offset: partition.start * ss, length: partition.size * ss };
}
