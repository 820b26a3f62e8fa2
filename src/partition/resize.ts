/**
 * Grows the last partition of an image in place (the file must already be large enough).
 * All new sectors are computed first, then written in an order that keeps the table readable if
 * interrupted: dos — the extended container in the MBR, then the EBRs; GPT — the backup copy at the
 * new end first, then the primary, then the protective MBR.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { crc32, writeU64le } from '../bytes/index.js';
import { backupHeaderFor, ENT_LAST_LBA, encodeGptHeader, entryArrayBytes, entryArraySectors, type GptHeader } from './gpt.js';
import { readGptState } from './gpt-table.js';
import { encodeProtectiveMbr, type SectorWrite } from './encode.js';
import { decodeMbrSector, encodeMbrSector, isExtendedType, isUsedEntry, lbaToChs, MBR_MAX_LBA, MBR_SECTOR_SIZE, type MbrEntry } from './mbr.js';
import { runOnFile } from './source.js';
import { getPartition, readPartitionTable } from './table.js';
import type { Partition, PartitionTable } from './types.js';

const SECTOR = BigInt(MBR_SECTOR_SIZE);

function end(p: Partition): bigint {
  return p.start + p.size - 1n;
}

async function readAt(handle: FileHandle, offset: bigint, length: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, Number(offset) + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled < length) throw new DiskwrightError('E_TRUNCATED', `short read at byte ${offset}: wanted ${length}, got ${filled}`, { offset });
  return buffer;
}

function withSize(entry: MbrEntry, sectors: bigint, absStart: bigint): MbrEntry {
  return { ...entry, sectors: Number(sectors), chsEnd: lbaToChs(absStart + sectors - 1n) };
}

/** Refuses anything but the partition that ends last on the disk. */
function checkIsLast(table: PartitionTable, target: Partition): void {
  for (const p of table.partitions) {
    if (p === target || p.size === 0n) continue;
    if (target.kind === 'logical' && p.kind === 'extended') continue;
    if (end(p) >= end(target) || (target.kind === 'logical' && p.kind === 'logical' && p.number > target.number)) {
      throw new InvalidArgumentError(`partition ${target.number} is not the last partition on the disk (partition ${p.number} ends at sector ${end(p)})`, {
        hint: 'only the partition that ends last can be grown in place',
      });
    }
  }
}

async function planDos(handle: FileHandle, table: PartitionTable, target: Partition, newSize: bigint): Promise<SectorWrite[]> {
  const newEnd = target.start + newSize - 1n;
  if (newSize > MBR_MAX_LBA) throw new InvalidArgumentError(`a dos partition holds at most ${MBR_MAX_LBA} sectors, asked for ${newSize}`, { hint: 'use a GPT disk for partitions of 2 TiB and more' });
  const mbrBytes = await readAt(handle, 0n, MBR_SECTOR_SIZE);
  const mbr = decodeMbrSector(mbrBytes);
  if (target.kind === 'primary') {
    const entries = [...mbr.entries] as [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
    entries[target.number - 1] = withSize(entries[target.number - 1]!, newSize, target.start);
    return [{ offset: 0n, bytes: encodeMbrSector({ diskId: mbr.diskId, entries }, mbrBytes) }];
  }
  if (target.kind !== 'logical' || target.ebr === undefined) {
    throw new InvalidArgumentError(`partition ${target.number} is an extended container; grow its last logical partition instead`);
  }
  const extIndex = mbr.entries.findIndex((e) => isUsedEntry(e) && isExtendedType(e.type));
  const ext = table.partitions.find((p) => p.kind === 'extended' && p.number === extIndex + 1);
  if (!ext) throw new DiskwrightError('E_NO_PARTITION', `partition ${target.number} is logical but the extended partition is missing`);
  const writes: SectorWrite[] = [];
  // 1. The container in the MBR, so a crash leaves a consistent (merely larger) extended partition.
  const extSize = (newEnd > end(ext) ? newEnd : end(ext)) - ext.start + 1n;
  if (extSize > MBR_MAX_LBA) throw new InvalidArgumentError(`the extended partition would exceed ${MBR_MAX_LBA} sectors`);
  const mbrEntries = [...mbr.entries] as [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
  mbrEntries[extIndex] = withSize(mbrEntries[extIndex]!, extSize, ext.start);
  writes.push({ offset: 0n, bytes: encodeMbrSector({ diskId: mbr.diskId, entries: mbrEntries }, mbrBytes) });
  // 2. The previous EBR's link entry covers this EBR through the end of its logical partition.
  const previous = table.partitions.filter((p) => p.kind === 'logical' && p.number < target.number).at(-1);
  if (previous?.ebr !== undefined) {
    const bytes = await readAt(handle, previous.ebr * SECTOR, MBR_SECTOR_SIZE);
    const sector = decodeMbrSector(bytes);
    const li = sector.entries.findIndex((e) => e.sectors !== 0 && isExtendedType(e.type) && ext.start + BigInt(e.startLba) === target.ebr);
    if (li >= 0) {
      const entries = [...sector.entries] as [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
      entries[li] = withSize(entries[li]!, newEnd - target.ebr + 1n, target.ebr);
      writes.push({ offset: previous.ebr * SECTOR, bytes: encodeMbrSector({ diskId: sector.diskId, entries }, bytes) });
    }
  }
  // 3. The logical partition's own entry in its EBR.
  const ebrBytes = await readAt(handle, target.ebr * SECTOR, MBR_SECTOR_SIZE);
  const ebr = decodeMbrSector(ebrBytes);
  const di = ebr.entries.findIndex((e) => e.sectors !== 0 && isUsedEntry(e) && !isExtendedType(e.type));
  if (di < 0) throw new DiskwrightError('E_NO_PARTITION', `EBR at sector ${target.ebr} no longer holds partition ${target.number}`);
  const entries = [...ebr.entries] as [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
  entries[di] = withSize(entries[di]!, newSize, target.start);
  writes.push({ offset: target.ebr * SECTOR, bytes: encodeMbrSector({ diskId: ebr.diskId, entries }, ebrBytes) });
  return writes;
}

async function planGpt(handle: FileHandle, diskSize: bigint, target: Partition, newSize: bigint, imagePath: string): Promise<SectorWrite[]> {
  const state = await runOnFile(readGptState(diskSize), handle, imagePath);
  const ss = BigInt(state.sectorSize);
  const used = state.used.header;
  const lastLba = diskSize / ss - 1n;
  const arraySectors = entryArraySectors(used, state.sectorSize);
  const lastUsableLba = lastLba - arraySectors - 1n;
  if (lastUsableLba < used.lastUsableLba) {
    throw new InvalidArgumentError(`the image (${lastLba + 1n} sectors) is smaller than its GPT says (last usable LBA ${used.lastUsableLba})`);
  }
  const newEnd = target.start + newSize - 1n;
  if (newEnd > lastUsableLba) {
    throw new InvalidArgumentError(`partition ${target.number} would end at LBA ${newEnd}, past the last usable LBA ${lastUsableLba}`, {
      hint: 'grow the image file first (diskwright resize does both)',
    });
  }
  const array = await readAt(handle, used.entriesLba * ss, entryArrayBytes(used));
  const newArray = array.slice();
  writeU64le(newArray, (target.number - 1) * used.entrySize + ENT_LAST_LBA, newEnd);
  const entriesCrc32 = crc32(newArray);
  const primaryEntriesLba = state.primary.ok ? state.primary.side.header.entriesLba : 2n;
  const primary: GptHeader = { ...used, myLba: 1n, alternateLba: lastLba, entriesLba: primaryEntriesLba, lastUsableLba, entriesCrc32 };
  const backup = backupHeaderFor(primary, lastLba, state.sectorSize);
  const pmbrBytes = await readAt(handle, 0n, MBR_SECTOR_SIZE);
  const writes: SectorWrite[] = [
    { offset: backup.entriesLba * ss, bytes: newArray },
    { offset: lastLba * ss, bytes: encodeGptHeader(backup, state.sectorSize) },
    { offset: primary.entriesLba * ss, bytes: newArray },
    { offset: ss, bytes: encodeGptHeader(primary, state.sectorSize) },
    { offset: 0n, bytes: encodeProtectiveMbr(lastLba + 1n, pmbrBytes) },
  ];
  // The old backup header now lies in the unpartitioned tail or the grown partition: clear its signature.
  if (state.backup.ok && state.backupLba !== lastLba && state.backupLba > used.lastUsableLba) {
    writes.push({ offset: state.backupLba * ss, bytes: new Uint8Array(state.sectorSize) });
  }
  return writes;
}

/**
 * The largest size partition `number` can be grown to in this image: up to the last sector (dos,
 * capped at 2^32 − 1 sectors) or the last usable LBA once the backup GPT sits at the image's end.
 */
export async function maxPartitionSize(imagePath: string, number: number): Promise<bigint> {
  const table = await readPartitionTable(imagePath);
  const target = getPartition(table, number);
  const ss = BigInt(table.sectorSize);
  const lastLba = table.diskSize / ss - 1n;
  if (table.label === 'dos') {
    const size = lastLba - target.start + 1n;
    return size > MBR_MAX_LBA ? MBR_MAX_LBA : size;
  }
  const handle = await open(imagePath, 'r');
  try {
    const state = await runOnFile(readGptState(table.diskSize), handle, imagePath);
    return lastLba - entryArraySectors(state.used.header, state.sectorSize) - 1n - target.start + 1n;
  } finally {
    await handle.close();
  }
}

/** The reads a resize plan needs: a FileHandle, or any Disk-backed reader of the same shape. */
export type PlanReader = Pick<FileHandle, 'read'>;

/**
 * The sector writes that grow partition `number` of `table` to `newSizeSectors` (the checks of
 * {@link resizePartition}, nothing written): the caller applies them, e.g. into a copy-on-write
 * overlay committed together with the filesystem's growth. `table` must describe the disk at
 * its new size (`diskSize`), `handle` read that disk.
 */
export async function planPartitionResize(handle: PlanReader, table: PartitionTable, number: number, newSizeSectors: bigint, imagePath: string): Promise<SectorWrite[]> {
  const target = getPartition(table, number);
  if (typeof newSizeSectors !== 'bigint' || newSizeSectors < target.size) {
    throw new InvalidArgumentError(`Expected a new size of at least ${target.size} sectors for partition ${number} (shrinking is not supported), got \`${newSizeSectors}\``);
  }
  checkIsLast(table, target);
  const ss = BigInt(table.sectorSize);
  const diskSectors = table.diskSize / ss;
  if (target.start + newSizeSectors > diskSectors) {
    throw new InvalidArgumentError(`partition ${number} would end at sector ${target.start + newSizeSectors - 1n}, past the end of the image (${diskSectors} sectors)`, {
      hint: 'grow the image file first (diskwright resize does both)',
    });
  }
  const reader = handle as FileHandle;
  return table.label === 'dos' ? planDos(reader, table, target, newSizeSectors) : planGpt(reader, table.diskSize, target, newSizeSectors, imagePath);
}

/**
 * Grows the last partition to `newSizeSectors`, or to the end of the image with `'max'` (dos: a
 * primary, or the last logical together with its extended container; gpt: the entry, CRCs, and
 * the backup GPT moved to the image's end). Refuses to shrink and anything but the last partition.
 * Returns the re-read table.
 */
export async function resizePartition(imagePath: string, number: number, newSizeSectors: bigint | 'max'): Promise<PartitionTable> {
  const table = await readPartitionTable(imagePath);
  if (newSizeSectors === 'max') newSizeSectors = await maxPartitionSize(imagePath, number);
  const handle = await open(imagePath, 'r+');
  try {
    const writes = await planPartitionResize(handle, table, number, newSizeSectors, imagePath);
    for (const [i, w] of writes.entries()) {
      await handle.write(w.bytes, 0, w.bytes.length, Number(w.offset));
      // GPT: make the new backup durable before the primary points at it.
      if (table.label === 'gpt' && i === 1) await handle.sync();
    }
    await handle.sync();
  } catch (error) {
    if (error instanceof DiskwrightError) throw error;
    throw new DiskwrightError('E_IO', `cannot update the partition table of ${imagePath}: ${(error as Error).message}`, { path: imagePath, cause: error });
  } finally {
    await handle.close();
  }
  return readPartitionTable(imagePath);
}
