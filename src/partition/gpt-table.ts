/**
 * Reads a GPT label: primary header at LBA 1, backup at the primary's alternate LBA (or the last
 * LBA when the primary is unusable). A damaged copy is reported in `warnings`; only when both are
 * unusable does reading fail.
 */
import { DiskwrightError, isDiskwrightError } from '../errors.js';
import { geometryWarnings } from './dos.js';
import {
  entryArrayBytes,
  GPT_SECTOR_SIZES,
  hasGptSignature,
  parseGptEntries,
  parseGptHeader,
  type GptEntry,
  type GptHeader,
} from './gpt.js';
import type { TableReader } from './source.js';
import type { Partition, PartitionTable } from './types.js';

export interface GptSide {
  readonly header: GptHeader;
  readonly entries: readonly GptEntry[];
}

/** Neither GPT header (nor its entries) is usable: listing falls back to the protective MBR. */
export class GptUnreadableError extends DiskwrightError {
  override readonly name = 'GptUnreadableError';
}

export type GptSideResult = { readonly ok: true; readonly side: GptSide } | { readonly ok: false; readonly error: DiskwrightError };

function asDiskwrightError(error: unknown): DiskwrightError {
  if (isDiskwrightError(error)) return error;
  throw error;
}

/**
 * libfdisk's gpt_check_lba_sanity: the usable range must be ordered, lie on the disk, and not
 * contain the primary header (LBA 1). A header failing it is unusable, like a bad CRC.
 */
function usableRangeProblem(header: GptHeader, lastLba: bigint): string | undefined {
  const fu = header.firstUsableLba;
  const lu = header.lastUsableLba;
  if (lu < fu) return `last usable LBA ${lu} is before first usable LBA ${fu}`;
  if (fu > lastLba || lu > lastLba) return `usable LBAs ${fu}–${lu} go past the last LBA of the disk (${lastLba})`;
  if (fu < 1n && 1n < lu) return `usable LBAs ${fu}–${lu} contain the primary header at LBA 1`;
  return undefined;
}

/** Reads and verifies one header + its entry array. Never throws for bad bytes: returns the error. */
export function* readGptSide(lba: bigint, sectorSize: number, diskSize: bigint): TableReader<GptSideResult> {
  try {
    const ss = BigInt(sectorSize);
    if ((lba + 1n) * ss > diskSize || lba < 0n) {
      return { ok: false, error: new DiskwrightError('E_TRUNCATED', `GPT header at LBA ${lba} lies beyond the end of the image (${diskSize} bytes)`) };
    }
    const sector = yield { offset: lba * ss, length: sectorSize };
    const header = parseGptHeader(sector, { sectorSize, expectedLba: lba });
    const sanity = usableRangeProblem(header, diskSize / ss - 1n);
    if (sanity) return { ok: false, error: new DiskwrightError('E_OUT_OF_RANGE', `GPT header at LBA ${lba}: ${sanity}`) };
    const length = entryArrayBytes(header);
    if (header.entriesLba * ss + BigInt(length) > diskSize) {
      return { ok: false, error: new DiskwrightError('E_TRUNCATED', `GPT entry array at LBA ${header.entriesLba} (${length} bytes) lies beyond the end of the image (${diskSize} bytes)`) };
    }
    const array = length === 0 ? new Uint8Array(0) : yield { offset: header.entriesLba * ss, length };
    return { ok: true, side: { header, entries: parseGptEntries(array, header) } };
  } catch (error) {
    return { ok: false, error: asDiskwrightError(error) };
  }
}

/** The raw state of both GPT copies: what resize needs to rewrite them. */
export interface GptState {
  readonly sectorSize: number;
  readonly primary: GptSideResult;
  readonly backup: GptSideResult;
  /** LBA the backup was looked for at. */
  readonly backupLba: bigint;
  /** The copy in use (primary when valid, else backup). */
  readonly used: GptSide;
  readonly warnings: readonly string[];
}

/** Finds the logical sector size by locating "EFI PART" at LBA 1 (or at the last LBA). */
function* probeSectorSize(diskSize: bigint): TableReader<number> {
  for (const size of GPT_SECTOR_SIZES) {
    const bytes = yield { offset: BigInt(size), length: 8 };
    if (hasGptSignature(bytes)) return size;
  }
  for (const size of GPT_SECTOR_SIZES) {
    if (diskSize < BigInt(size) * 2n) continue;
    const bytes = yield { offset: (diskSize / BigInt(size) - 1n) * BigInt(size), length: 8 };
    if (hasGptSignature(bytes)) return size;
  }
  return GPT_SECTOR_SIZES[0];
}

export function* readGptState(diskSize: bigint): TableReader<GptState> {
  const sectorSize = yield* probeSectorSize(diskSize);
  const ss = BigInt(sectorSize);
  const lastLba = diskSize / ss - 1n;
  const warnings: string[] = [];
  const primary = yield* readGptSide(1n, sectorSize, diskSize);
  let backupLba = lastLba;
  if (primary.ok && primary.side.header.alternateLba !== lastLba) {
    backupLba = primary.side.header.alternateLba;
    warnings.push(`the backup GPT header is not at the end of the image (LBA ${backupLba}, last LBA ${lastLba})`);
  }
  let backup = yield* readGptSide(backupLba, sectorSize, diskSize);
  if (!backup.ok && backupLba !== lastLba) {
    const atEnd = yield* readGptSide(lastLba, sectorSize, diskSize);
    if (atEnd.ok) {
      backup = atEnd;
      backupLba = lastLba;
    }
  }
  let used: GptSide;
  if (primary.ok) {
    used = primary.side;
    if (!backup.ok) warnings.push(`the backup GPT is damaged (${backup.error.message}); the primary is used`);
  } else if (backup.ok) {
    used = backup.side;
    warnings.push(`the primary GPT is damaged (${primary.error.message}); the backup at LBA ${backupLba} is used`);
  } else {
    throw new GptUnreadableError(primary.error.code, `both GPT copies are unusable: primary: ${primary.error.message}; backup: ${backup.error.message}`, {
      cause: primary.error,
      hint: 'the disk has a protective MBR but no readable GPT; `sgdisk -v IMAGE` may say more',
    });
  }
  if (primary.ok && backup.ok) {
    const p = primary.side;
    const b = backup.side;
    if (p.header.diskGuid !== b.header.diskGuid || p.header.firstUsableLba !== b.header.firstUsableLba || p.header.entryCount !== b.header.entryCount || p.header.entriesCrc32 !== b.header.entriesCrc32) {
      warnings.push('the primary and backup GPT differ; the primary is used');
    }
  }
  return { sectorSize, primary, backup, backupLba, used, warnings };
}

export function gptPartition(entry: GptEntry): Partition {
  return {
    number: entry.index,
    start: entry.firstLba,
    size: entry.lastLba >= entry.firstLba ? entry.lastLba - entry.firstLba + 1n : 0n,
    type: entry.typeGuid,
    bootable: false,
    uuid: entry.uniqueGuid,
    ...(entry.name ? { name: entry.name } : {}),
    attributes: entry.attributes,
    kind: 'gpt',
  };
}

export function* readGptTable(diskSize: bigint): TableReader<PartitionTable> {
  const state = yield* readGptState(diskSize);
  const { header, entries } = state.used;
  const warnings = [...state.warnings];
  const partitions = entries.map(gptPartition);
  for (const e of entries) {
    if (e.lastLba < e.firstLba) warnings.push(`partition ${e.index} ends (LBA ${e.lastLba}) before it starts (LBA ${e.firstLba})`);
    else if (e.firstLba < header.firstUsableLba || e.lastLba > header.lastUsableLba) {
      warnings.push(`partition ${e.index} (LBA ${e.firstLba}–${e.lastLba}) lies outside the usable area (LBA ${header.firstUsableLba}–${header.lastUsableLba})`);
    }
  }
  warnings.push(...geometryWarnings(partitions, diskSize / BigInt(state.sectorSize), 'LBA'));
  return {
    label: 'gpt',
    id: header.diskGuid,
    sectorSize: state.sectorSize,
    diskSize,
    partitions,
    warnings,
    firstUsableLba: header.firstUsableLba,
    lastUsableLba: header.lastUsableLba,
    entryCount: header.entryCount,
  };
}
