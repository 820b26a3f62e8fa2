/**
 * GPT codec (pure) per UEFI Specification 2.10 §5.3: header (Table 5-5) at LBA 1 with a backup
 * at the last LBA, partition entry array (Table 5-6), both protected by CRC32.
 */
import { BadSignatureError, DiskwrightError, InvalidArgumentError, LimitError, TruncatedError } from '../errors.js';
import { crc32, requireBytes, u32le, u64le, writeU32le, writeU64le } from '../bytes/index.js';
import { encodeGuid, formatGuid, isZeroGuid } from './guid.js';

/** "EFI PART" */
export const GPT_SIGNATURE = new Uint8Array([0x45, 0x46, 0x49, 0x20, 0x50, 0x41, 0x52, 0x54]);
export const GPT_REVISION_1_0 = 0x0001_0000;

// Header field offsets (UEFI 2.10 Table 5-5).
export const HDR_SIGNATURE = 0;
export const HDR_REVISION = 8;
export const HDR_HEADER_SIZE = 12;
export const HDR_HEADER_CRC32 = 16;
export const HDR_RESERVED = 20;
export const HDR_MY_LBA = 24;
export const HDR_ALTERNATE_LBA = 32;
export const HDR_FIRST_USABLE_LBA = 40;
export const HDR_LAST_USABLE_LBA = 48;
export const HDR_DISK_GUID = 56;
export const HDR_ENTRIES_LBA = 72;
export const HDR_ENTRY_COUNT = 80;
export const HDR_ENTRY_SIZE = 84;
export const HDR_ENTRIES_CRC32 = 88;
/** Size of the defined header fields; headerSize may be larger (up to a sector). */
export const GPT_HEADER_MIN_SIZE = 92;

// Entry field offsets (UEFI 2.10 Table 5-6).
export const ENT_TYPE_GUID = 0;
export const ENT_UNIQUE_GUID = 16;
export const ENT_FIRST_LBA = 32;
export const ENT_LAST_LBA = 40;
export const ENT_ATTRIBUTES = 48;
export const ENT_NAME = 56;
/** Name field: 36 UTF-16LE code units. */
export const ENT_NAME_BYTES = 72;
export const GPT_ENTRY_MIN_SIZE = 128;

/** Limits on values read from untrusted headers. */
export const MAX_GPT_ENTRIES = 16384;
export const MAX_GPT_ENTRY_SIZE = 4096;
export const MAX_GPT_ENTRY_ARRAY_BYTES = 4 * 1024 * 1024;
/** Logical sector sizes we probe for (512e/512n and 4Kn disks). */
export const GPT_SECTOR_SIZES = [512, 4096] as const;
/** Default entry array: 128 entries of 128 bytes (what sfdisk/gdisk write). */
export const DEFAULT_GPT_ENTRIES = 128;

export interface GptHeader {
  readonly revision: number;
  readonly headerSize: number;
  readonly myLba: bigint;
  readonly alternateLba: bigint;
  readonly firstUsableLba: bigint;
  readonly lastUsableLba: bigint;
  readonly diskGuid: string;
  readonly entriesLba: bigint;
  readonly entryCount: number;
  readonly entrySize: number;
  readonly entriesCrc32: number;
}

export interface GptEntry {
  /** 1-based slot number in the entry array. */
  readonly index: number;
  readonly typeGuid: string;
  readonly uniqueGuid: string;
  readonly firstLba: bigint;
  readonly lastLba: bigint;
  readonly attributes: bigint;
  readonly name: string;
}

export function hasGptSignature(bytes: Uint8Array, offset = 0): boolean {
  if (bytes.length < offset + GPT_SIGNATURE.length) return false;
  return GPT_SIGNATURE.every((b, i) => bytes[offset + i] === b);
}

/** CRC32 of the header bytes with the CRC field taken as zero (computed on a copy). */
export function gptHeaderCrc(sector: Uint8Array, headerSize: number): number {
  const copy = sector.slice(0, headerSize);
  copy.fill(0, HDR_HEADER_CRC32, HDR_HEADER_CRC32 + 4);
  return crc32(copy);
}

/**
 * Parses and verifies a GPT header sector read from `expectedLba`. Throws E_BAD_SIGNATURE,
 * E_BAD_CHECKSUM, E_LIMIT or E_OUT_OF_RANGE naming what is wrong.
 */
export function parseGptHeader(sector: Uint8Array, options: { sectorSize: number; expectedLba: bigint }): GptHeader {
  const where = `GPT header at LBA ${options.expectedLba}`;
  requireBytes(sector, 0, GPT_HEADER_MIN_SIZE, where);
  if (!hasGptSignature(sector)) throw new BadSignatureError(`${where}: no "EFI PART" signature`, { offset: HDR_SIGNATURE });
  const headerSize = u32le(sector, HDR_HEADER_SIZE);
  if (headerSize < GPT_HEADER_MIN_SIZE || headerSize > options.sectorSize) {
    throw new LimitError(`${where}: header size ${headerSize} is outside ${GPT_HEADER_MIN_SIZE}–${options.sectorSize}`, { offset: HDR_HEADER_SIZE, actual: headerSize });
  }
  requireBytes(sector, 0, headerSize, where);
  const stored = u32le(sector, HDR_HEADER_CRC32);
  const computed = gptHeaderCrc(sector, headerSize);
  if (stored !== computed) {
    throw new DiskwrightError('E_BAD_CHECKSUM', `${where}: header CRC32 is 0x${hex32(stored)}, computed 0x${hex32(computed)}`, {
      offset: HDR_HEADER_CRC32,
      expected: computed,
      actual: stored,
    });
  }
  const header: GptHeader = {
    revision: u32le(sector, HDR_REVISION),
    headerSize,
    myLba: u64le(sector, HDR_MY_LBA),
    alternateLba: u64le(sector, HDR_ALTERNATE_LBA),
    firstUsableLba: u64le(sector, HDR_FIRST_USABLE_LBA),
    lastUsableLba: u64le(sector, HDR_LAST_USABLE_LBA),
    diskGuid: formatGuid(sector, HDR_DISK_GUID),
    entriesLba: u64le(sector, HDR_ENTRIES_LBA),
    entryCount: u32le(sector, HDR_ENTRY_COUNT),
    entrySize: u32le(sector, HDR_ENTRY_SIZE),
    entriesCrc32: u32le(sector, HDR_ENTRIES_CRC32),
  };
  if (header.myLba !== options.expectedLba) {
    throw new DiskwrightError('E_OUT_OF_RANGE', `${where}: header says it lives at LBA ${header.myLba}`, { offset: HDR_MY_LBA, expected: options.expectedLba, actual: header.myLba });
  }
  if (header.entryCount > MAX_GPT_ENTRIES) {
    throw new LimitError(`${where}: ${header.entryCount} partition entries exceed the limit of ${MAX_GPT_ENTRIES}`, { offset: HDR_ENTRY_COUNT, expected: MAX_GPT_ENTRIES, actual: header.entryCount });
  }
  if (header.entrySize < GPT_ENTRY_MIN_SIZE || header.entrySize > MAX_GPT_ENTRY_SIZE || header.entrySize % 8 !== 0) {
    throw new LimitError(`${where}: entry size ${header.entrySize} is not a multiple of 8 within ${GPT_ENTRY_MIN_SIZE}–${MAX_GPT_ENTRY_SIZE}`, { offset: HDR_ENTRY_SIZE, actual: header.entrySize });
  }
  if (header.entryCount * header.entrySize > MAX_GPT_ENTRY_ARRAY_BYTES) {
    throw new LimitError(`${where}: entry array of ${header.entryCount * header.entrySize} bytes exceeds ${MAX_GPT_ENTRY_ARRAY_BYTES}`, { offset: HDR_ENTRY_COUNT });
  }
  if (header.firstUsableLba > header.lastUsableLba + 1n) {
    throw new DiskwrightError('E_OUT_OF_RANGE', `${where}: first usable LBA ${header.firstUsableLba} is after last usable LBA ${header.lastUsableLba}`, { offset: HDR_FIRST_USABLE_LBA });
  }
  return header;
}

/** Bytes of the entry array described by `header`. */
export function entryArrayBytes(header: Pick<GptHeader, 'entryCount' | 'entrySize'>): number {
  return header.entryCount * header.entrySize;
}

const utf16 = new TextDecoder('utf-16le');

function decodeName(bytes: Uint8Array, offset: number): string {
  let end = offset;
  while (end < offset + ENT_NAME_BYTES && (bytes[end] !== 0 || bytes[end + 1] !== 0)) end += 2;
  return utf16.decode(bytes.subarray(offset, end));
}

/** Verifies the entry-array CRC and returns the used entries (non-zero type GUID). */
export function parseGptEntries(array: Uint8Array, header: GptHeader): GptEntry[] {
  const length = entryArrayBytes(header);
  if (array.length < length) {
    throw new TruncatedError(`GPT entry array at LBA ${header.entriesLba}: need ${length} bytes, have ${array.length}`, { expected: length, actual: array.length });
  }
  const computed = crc32(array.subarray(0, length));
  if (computed !== header.entriesCrc32) {
    throw new DiskwrightError('E_BAD_CHECKSUM', `GPT entry array at LBA ${header.entriesLba}: CRC32 is 0x${hex32(header.entriesCrc32)}, computed 0x${hex32(computed)}`, {
      expected: computed,
      actual: header.entriesCrc32,
    });
  }
  const entries: GptEntry[] = [];
  for (let i = 0; i < header.entryCount; i++) {
    const o = i * header.entrySize;
    if (isZeroGuid(array, o + ENT_TYPE_GUID)) continue;
    entries.push({
      index: i + 1,
      typeGuid: formatGuid(array, o + ENT_TYPE_GUID),
      uniqueGuid: formatGuid(array, o + ENT_UNIQUE_GUID),
      firstLba: u64le(array, o + ENT_FIRST_LBA),
      lastLba: u64le(array, o + ENT_LAST_LBA),
      attributes: u64le(array, o + ENT_ATTRIBUTES),
      name: decodeName(array, o + ENT_NAME),
    });
  }
  return entries;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Encodes a partition entry array of `header.entryCount` slots; entries go to their `index`. */
export function encodeGptEntries(entries: readonly GptEntry[], header: Pick<GptHeader, 'entryCount' | 'entrySize'>): Uint8Array {
  const out = new Uint8Array(entryArrayBytes(header));
  for (const entry of entries) {
    if (!Number.isInteger(entry.index) || entry.index < 1 || entry.index > header.entryCount) {
      throw new InvalidArgumentError(`Expected GPT entry index within 1–${header.entryCount}, got \`${entry.index}\``);
    }
    const o = (entry.index - 1) * header.entrySize;
    out.set(encodeGuid(entry.typeGuid), o + ENT_TYPE_GUID);
    out.set(encodeGuid(entry.uniqueGuid), o + ENT_UNIQUE_GUID);
    writeU64le(out, o + ENT_FIRST_LBA, entry.firstLba);
    writeU64le(out, o + ENT_LAST_LBA, entry.lastLba);
    writeU64le(out, o + ENT_ATTRIBUTES, entry.attributes);
    const units = entry.name;
    let p = o + ENT_NAME;
    for (let k = 0; k < units.length; k++) {
      if (p >= o + ENT_NAME + ENT_NAME_BYTES) {
        throw new InvalidArgumentError(`Expected a GPT partition name of at most 36 UTF-16 units, got \`${entry.name}\``);
      }
      const unit = units.charCodeAt(k);
      out[p] = unit & 0xff;
      out[p + 1] = unit >> 8;
      p += 2;
    }
  }
  return out;
}

/** Encodes a header sector of `sectorSize` bytes with its CRC32 (entriesCrc32 is taken as given). */
export function encodeGptHeader(header: GptHeader, sectorSize: number): Uint8Array {
  if (header.headerSize < GPT_HEADER_MIN_SIZE || header.headerSize > sectorSize) {
    throw new InvalidArgumentError(`Expected GPT header size within ${GPT_HEADER_MIN_SIZE}–${sectorSize}, got \`${header.headerSize}\``);
  }
  const out = new Uint8Array(sectorSize);
  out.set(GPT_SIGNATURE, HDR_SIGNATURE);
  writeU32le(out, HDR_REVISION, header.revision);
  writeU32le(out, HDR_HEADER_SIZE, header.headerSize);
  writeU64le(out, HDR_MY_LBA, header.myLba);
  writeU64le(out, HDR_ALTERNATE_LBA, header.alternateLba);
  writeU64le(out, HDR_FIRST_USABLE_LBA, header.firstUsableLba);
  writeU64le(out, HDR_LAST_USABLE_LBA, header.lastUsableLba);
  out.set(encodeGuid(header.diskGuid), HDR_DISK_GUID);
  writeU64le(out, HDR_ENTRIES_LBA, header.entriesLba);
  writeU32le(out, HDR_ENTRY_COUNT, header.entryCount);
  writeU32le(out, HDR_ENTRY_SIZE, header.entrySize);
  writeU32le(out, HDR_ENTRIES_CRC32, header.entriesCrc32);
  writeU32le(out, HDR_HEADER_CRC32, gptHeaderCrc(out, header.headerSize));
  return out;
}

/** Sectors the entry array occupies. */
export function entryArraySectors(header: Pick<GptHeader, 'entryCount' | 'entrySize'>, sectorSize: number): bigint {
  return BigInt(Math.ceil(entryArrayBytes(header) / sectorSize));
}

/**
 * The backup header that mirrors `primary` for a disk whose last LBA is `lastLba`: entries just
 * before the header, `myLba`/`alternateLba` swapped (UEFI 2.10 §5.3.2).
 */
export function backupHeaderFor(primary: GptHeader, lastLba: bigint, sectorSize: number): GptHeader {
  return {
    ...primary,
    myLba: lastLba,
    alternateLba: primary.myLba,
    entriesLba: lastLba - entryArraySectors(primary, sectorSize),
  };
}

/** sfdisk's attribute string: `RequiredPartition NoBlockIOProtocol LegacyBIOSBootable GUID:48,50`. */
export function formatGptAttributes(attributes: bigint): string {
  const words: string[] = [];
  if (attributes & 1n) words.push('RequiredPartition');
  if (attributes & 2n) words.push('NoBlockIOProtocol');
  if (attributes & 4n) words.push('LegacyBIOSBootable');
  const bits: number[] = [];
  for (let bit = 48; bit < 64; bit++) if (attributes & (1n << BigInt(bit))) bits.push(bit);
  if (bits.length > 0) words.push(`GUID:${bits.join(',')}`);
  return words.join(' ');
}
