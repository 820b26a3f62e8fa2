/**
 * MBR / EBR sector codec (pure). Layout per the IBM PC MBR format as documented in
 * UEFI 2.10 §5.2.1 "Legacy Master Boot Record" (Table 5-1, 5-2) and util-linux include/pt-mbr.h.
 * EBRs use the same sector layout; only the meaning of the entries differs (see dos.ts).
 */
import { BadSignatureError, InvalidArgumentError } from '../errors.js';
import { requireBytes, u32le, writeU32le } from '../bytes/index.js';

/** Bytes per sector for MBR/EBR tables (the dos label is always 512-byte-sector here). */
export const MBR_SECTOR_SIZE = 512;
/** Offset of the 32-bit disk identifier ("NT disk signature"). */
export const MBR_DISK_ID_OFFSET = 440;
/** Offset of the first of the four 16-byte partition entries. */
export const MBR_ENTRIES_OFFSET = 446;
export const MBR_ENTRY_SIZE = 16;
export const MBR_ENTRY_COUNT = 4;
/** Offset of the 0x55 0xAA boot signature. */
export const MBR_SIGNATURE_OFFSET = 510;
export const MBR_SIGNATURE = [0x55, 0xaa] as const;

/** Offsets inside one 16-byte entry. */
export const ENTRY_BOOT_INDICATOR = 0;
export const ENTRY_CHS_START = 1;
export const ENTRY_TYPE = 4;
export const ENTRY_CHS_END = 5;
export const ENTRY_START_LBA = 8;
export const ENTRY_SECTORS = 12;

/** Boot indicator of an active (bootable) partition. */
export const BOOT_ACTIVE = 0x80;
/** Types Linux treats as an extended container (DOS, W95 LBA, Linux extended). */
export const EXTENDED_TYPES: ReadonlySet<number> = new Set([0x05, 0x0f, 0x85]);
/** Protective-MBR type of a GPT disk. */
export const GPT_PROTECTIVE_TYPE = 0xee;
/** Largest LBA / sector count a 32-bit MBR field holds. */
export const MBR_MAX_LBA = 0xffff_ffffn;

/** One raw MBR/EBR entry. `startLba` is relative to whatever the entry's context says. */
export interface MbrEntry {
  readonly bootIndicator: number;
  readonly type: number;
  readonly startLba: number;
  readonly sectors: number;
  /** Raw 3-byte CHS fields (kept for byte-exact round trips). */
  readonly chsStart: readonly [number, number, number];
  readonly chsEnd: readonly [number, number, number];
}

export interface MbrSector {
  readonly diskId: number;
  readonly entries: readonly [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
  readonly hasSignature: boolean;
}

/** An entry is used when it has a type (libfdisk and the kernel skip type 0). */
export function isUsedEntry(entry: MbrEntry): boolean {
  return entry.type !== 0;
}

/**
 * A primary slot counts as present unless every field is zero (libfdisk is_cleared_partition):
 * sfdisk lists a type-0 entry with a size, and a typed entry of size 0.
 */
export function isClearedEntry(entry: MbrEntry): boolean {
  return (
    entry.bootIndicator === 0 &&
    entry.type === 0 &&
    entry.startLba === 0 &&
    entry.sectors === 0 &&
    entry.chsStart.every((b) => b === 0) &&
    entry.chsEnd.every((b) => b === 0)
  );
}

export function isExtendedType(type: number): boolean {
  return EXTENDED_TYPES.has(type);
}

export const EMPTY_ENTRY: MbrEntry = { bootIndicator: 0, type: 0, startLba: 0, sectors: 0, chsStart: [0, 0, 0], chsEnd: [0, 0, 0] };

function parseEntry(sector: Uint8Array, index: number): MbrEntry {
  const o = MBR_ENTRIES_OFFSET + index * MBR_ENTRY_SIZE;
  return {
    bootIndicator: sector[o + ENTRY_BOOT_INDICATOR]!,
    type: sector[o + ENTRY_TYPE]!,
    startLba: u32le(sector, o + ENTRY_START_LBA),
    sectors: u32le(sector, o + ENTRY_SECTORS),
    chsStart: [sector[o + ENTRY_CHS_START]!, sector[o + ENTRY_CHS_START + 1]!, sector[o + ENTRY_CHS_START + 2]!],
    chsEnd: [sector[o + ENTRY_CHS_END]!, sector[o + ENTRY_CHS_END + 1]!, sector[o + ENTRY_CHS_END + 2]!],
  };
}

/**
 * Decodes one MBR or EBR sector without judging it: `hasSignature` reports the 0x55AA check so
 * the caller decides whether a missing signature is fatal (MBR) or a warning (EBR).
 */
export function decodeMbrSector(sector: Uint8Array, what = 'MBR'): MbrSector {
  requireBytes(sector, 0, MBR_SECTOR_SIZE, what);
  return {
    diskId: u32le(sector, MBR_DISK_ID_OFFSET),
    entries: [parseEntry(sector, 0), parseEntry(sector, 1), parseEntry(sector, 2), parseEntry(sector, 3)],
    hasSignature: sector[MBR_SIGNATURE_OFFSET] === MBR_SIGNATURE[0] && sector[MBR_SIGNATURE_OFFSET + 1] === MBR_SIGNATURE[1],
  };
}

/** Decodes the MBR at sector 0; throws E_BAD_SIGNATURE when 0x55AA is missing. */
export function parseMbr(sector: Uint8Array): MbrSector {
  const mbr = decodeMbrSector(sector, 'MBR');
  if (!mbr.hasSignature) {
    throw new BadSignatureError(
      `no partition table: sector 0 lacks the 0x55AA boot signature (found 0x${hex2(sector[510]!)}${hex2(sector[511]!)})`,
      { offset: MBR_SIGNATURE_OFFSET, expected: '55aa', actual: `${hex2(sector[510]!)}${hex2(sector[511]!)}`, hint: 'is this a raw disk image (not qcow2, not a bare filesystem)? `qemu-img info IMAGE` tells' },
    );
  }
  return mbr;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Geometry sfdisk uses for images: 255 heads, 63 sectors per track (CHS is informational only). */
export const CHS_HEADS = 255;
export const CHS_SECTORS = 63;

/** CHS triple for an absolute LBA, saturating at 1023/254/63 like libfdisk. */
export function lbaToChs(lba: bigint): [number, number, number] {
  const perCyl = BigInt(CHS_HEADS * CHS_SECTORS);
  const cyl = lba / perCyl;
  if (cyl > 1023n) return [0xfe, 0xff, 0xff];
  const rest = Number(lba % perCyl);
  const head = Math.floor(rest / CHS_SECTORS);
  const sector = (rest % CHS_SECTORS) + 1;
  const c = Number(cyl);
  return [head, sector | ((c >> 8) << 6), c & 0xff];
}

function checkField(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new InvalidArgumentError(`Expected \`${name}\` to fit in 32 bits, got \`${value}\``);
  }
}

/**
 * Encodes an MBR/EBR sector. Bytes outside the disk id, entries and signature are taken from
 * `base` (boot code survives a rewrite); the input is never mutated.
 */
export function encodeMbrSector(mbr: Omit<MbrSector, 'hasSignature'>, base?: Uint8Array): Uint8Array {
  const out = new Uint8Array(MBR_SECTOR_SIZE);
  if (base) out.set(base.subarray(0, MBR_SECTOR_SIZE));
  checkField(mbr.diskId, 'diskId');
  writeU32le(out, MBR_DISK_ID_OFFSET, mbr.diskId);
  mbr.entries.forEach((entry, index) => {
    const o = MBR_ENTRIES_OFFSET + index * MBR_ENTRY_SIZE;
    checkField(entry.startLba, 'startLba');
    checkField(entry.sectors, 'sectors');
    out[o + ENTRY_BOOT_INDICATOR] = entry.bootIndicator & 0xff;
    out.set(entry.chsStart, o + ENTRY_CHS_START);
    out[o + ENTRY_TYPE] = entry.type & 0xff;
    out.set(entry.chsEnd, o + ENTRY_CHS_END);
    writeU32le(out, o + ENTRY_START_LBA, entry.startLba);
    writeU32le(out, o + ENTRY_SECTORS, entry.sectors);
  });
  out[MBR_SIGNATURE_OFFSET] = MBR_SIGNATURE[0];
  out[MBR_SIGNATURE_OFFSET + 1] = MBR_SIGNATURE[1];
  return out;
}

/** A fresh entry for an absolute range, with CHS computed the way sfdisk writes it. */
export function makeEntry(options: { type: number; bootable?: boolean; relStart: bigint; sectors: bigint; absStart: bigint }): MbrEntry {
  const { type, relStart, sectors, absStart } = options;
  if (relStart < 0n || relStart > MBR_MAX_LBA || sectors < 0n || sectors > MBR_MAX_LBA) {
    throw new InvalidArgumentError(`Expected MBR start/size to fit in 32 bits, got start ${relStart}, size ${sectors}`);
  }
  const absEnd = sectors > 0n ? absStart + sectors - 1n : absStart;
  return {
    bootIndicator: options.bootable ? BOOT_ACTIVE : 0,
    type,
    startLba: Number(relStart),
    sectors: Number(sectors),
    chsStart: lbaToChs(absStart),
    chsEnd: lbaToChs(absEnd),
  };
}
