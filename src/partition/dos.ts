/**
 * The dos (MBR) label: four primary entries in sector 0 and, inside an extended partition, a chain
 * of EBRs each holding one logical partition and a link to the next EBR.
 * EBR semantics follow the Linux kernel (block/partitions/msdos.c) and libfdisk (dos.c):
 * the data entry's start is relative to its own EBR, the link entry's start is relative to the
 * start of the primary extended partition; logical partitions are numbered 5, 6, … in chain order.
 */
import { DiskwrightError } from '../errors.js';
import {
  decodeMbrSector,
  isClearedEntry,
  isExtendedType,
  isUsedEntry,
  MBR_SECTOR_SIZE,
  BOOT_ACTIVE,
  type MbrEntry,
  type MbrSector,
} from './mbr.js';
import type { TableReader } from './source.js';
import type { Partition, PartitionTable } from './types.js';

/**
 * Most EBRs followed in one chain: libfdisk (sfdisk, fdisk) keeps 60 table slots — 4 primary and
 * 56 EBRs — and omits the rest with a warning; we list exactly what sfdisk lists.
 */
export const MAX_LOGICAL_PARTITIONS = 56;
/** The last partition number sfdisk lists on a dos label. */
export const SFDISK_MAX_PARTITIONS = 4 + MAX_LOGICAL_PARTITIONS;

const SECTOR = BigInt(MBR_SECTOR_SIZE);

/** dos type byte as sfdisk prints it in JSON and dumps: lower-case hex without padding. */
export function formatDosType(type: number): string {
  return type.toString(16);
}

/** Disk identifier as sfdisk prints it: `0x` and 8 lower-case hex digits. */
export function formatDosId(diskId: number): string {
  return `0x${diskId.toString(16).padStart(8, '0')}`;
}

function partitionFrom(entry: MbrEntry, number: number, start: bigint, kind: Partition['kind'], ebr?: bigint): Partition {
  return {
    number,
    start,
    size: BigInt(entry.sectors),
    type: formatDosType(entry.type),
    bootable: entry.bootIndicator === BOOT_ACTIVE,
    kind,
    ...(ebr === undefined ? {} : { ebr }),
  };
}

/** Reads the EBR chain of the extended partition `ext` (absolute sectors). */
function* readLogicals(ext: { start: bigint; size: bigint; number: number }, diskSize: bigint, warnings: string[]): TableReader<Partition[]> {
  const logicals: Partition[] = [];
  if (ext.start === 0n) {
    warnings.push(`extended partition ${ext.number} starts at sector 0; its logical partitions are ignored`);
    return logicals;
  }
  const extEnd = ext.start + ext.size - 1n;
  const visited = new Set<bigint>();
  let ebr = ext.start;
  let number = 5;
  for (;;) {
    if (visited.has(ebr)) {
      throw new DiskwrightError('E_LOOP', `the EBR chain of extended partition ${ext.number} loops back to sector ${ebr}`, {
        offset: ebr * SECTOR,
        hint: 'the logical-partition table is corrupt; repair it with fdisk or restore the disk from a backup',
      });
    }
    visited.add(ebr);
    if (visited.size > MAX_LOGICAL_PARTITIONS) {
      warnings.push(`omitting partitions after #${SFDISK_MAX_PARTITIONS}, as sfdisk does (the EBR chain of extended partition ${ext.number} goes on at sector ${ebr})`);
      break;
    }
    const bytes = yield { offset: ebr * SECTOR, length: MBR_SECTOR_SIZE };
    if (bytes.length < MBR_SECTOR_SIZE) {
      warnings.push(`EBR at sector ${ebr} lies beyond the end of the image (${diskSize} bytes); logical partitions from ${number} on are missing`);
      break;
    }
    const sector: MbrSector = decodeMbrSector(bytes, `EBR at sector ${ebr}`);
    if (!sector.hasSignature) warnings.push(`EBR at sector ${ebr} lacks the 0x55AA signature`);
    let data: MbrEntry | undefined;
    let link: MbrEntry | undefined;
    for (const entry of sector.entries) {
      if (entry.sectors === 0) continue;
      if (isExtendedType(entry.type)) {
        if (link) warnings.push(`EBR at sector ${ebr} has an extra link entry; ignored`);
        else link = entry;
      } else if (isUsedEntry(entry)) {
        if (data) warnings.push(`EBR at sector ${ebr} has extra data entries; ignored`);
        else data = entry;
      }
    }
    if (data) {
      const start = ebr + BigInt(data.startLba);
      const partition = partitionFrom(data, number, start, 'logical', ebr);
      if (start < ext.start || start + partition.size - 1n > extEnd) {
        warnings.push(`logical partition ${number} (sectors ${start}–${start + partition.size - 1n}) lies outside extended partition ${ext.number} (sectors ${ext.start}–${extEnd})`);
      }
      logicals.push(partition);
      number++;
    }
    if (!link) break;
    const next = ext.start + BigInt(link.startLba);
    if (next > extEnd) {
      warnings.push(`EBR at sector ${ebr} links to sector ${next}, outside extended partition ${ext.number} (sectors ${ext.start}–${extEnd}); the chain ends there`);
      break;
    }
    ebr = next;
  }
  return logicals;
}

/** Overlaps between data partitions, partitions past the end of the image: warnings, not errors. */
export function geometryWarnings(partitions: readonly Partition[], diskSectors: bigint, sectorName = 'sector'): string[] {
  const warnings: string[] = [];
  for (const p of partitions) {
    const end = p.start + p.size - 1n;
    if (p.size > 0n && end >= diskSectors) {
      warnings.push(`partition ${p.number} ends at ${sectorName} ${end}, beyond the end of the image (last ${sectorName} ${diskSectors - 1n})`);
    }
  }
  const data = partitions.filter((p) => p.kind !== 'extended' && p.size > 0n).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.number - b.number));
  let reach: Partition | undefined;
  for (const p of data) {
    if (reach && p.start <= reach.start + reach.size - 1n) warnings.push(`partition ${p.number} overlaps partition ${reach.number}`);
    if (!reach || p.start + p.size > reach.start + reach.size) reach = p;
  }
  const extended = partitions.filter((p) => p.kind === 'extended');
  for (const ext of extended) {
    for (const p of partitions) {
      if (p.kind !== 'primary' || p.size === 0n) continue;
      if (p.start <= ext.start + ext.size - 1n && ext.start <= p.start + p.size - 1n) warnings.push(`partition ${p.number} overlaps extended partition ${ext.number}`);
    }
  }
  return warnings;
}

/** Reads a dos label whose MBR (sector 0, signature already checked) is `mbr`. */
export function* readDosTable(mbr: MbrSector, diskSize: bigint): TableReader<PartitionTable> {
  const warnings: string[] = [];
  const partitions: Partition[] = [];
  let extended: Partition | undefined;
  mbr.entries.forEach((entry, index) => {
    if (isClearedEntry(entry)) return;
    const isExt = isExtendedType(entry.type);
    const partition = partitionFrom(entry, index + 1, BigInt(entry.startLba), isExt ? 'extended' : 'primary');
    if (entry.bootIndicator !== 0 && entry.bootIndicator !== BOOT_ACTIVE) {
      warnings.push(`partition ${index + 1} has an invalid boot indicator 0x${entry.bootIndicator.toString(16)}`);
    }
    if (isExt) {
      if (extended) warnings.push(`ignoring extra extended partition ${index + 1}`);
      else extended = partition;
    }
    partitions.push(partition);
  });
  if (extended) {
    const logicals = yield* readLogicals({ start: extended.start, size: extended.size, number: extended.number }, diskSize, warnings);
    partitions.push(...logicals);
  }
  warnings.push(...geometryWarnings(partitions, diskSize / SECTOR));
  return {
    label: 'dos',
    id: formatDosId(mbr.diskId),
    sectorSize: MBR_SECTOR_SIZE,
    diskSize,
    partitions,
    warnings,
  };
}
