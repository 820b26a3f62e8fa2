/**
 * Whole-table encoders: a layout in, the sectors to write out. `parsePartitionTable` of an image
 * with these sectors written gives the layout back (tested as a round-trip property).
 */
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_GPT_ENTRIES, backupHeaderFor, encodeGptEntries, encodeGptHeader, entryArraySectors, GPT_ENTRY_MIN_SIZE, GPT_HEADER_MIN_SIZE, GPT_REVISION_1_0, type GptEntry, type GptHeader } from './gpt.js';
import { crc32 } from '../bytes/index.js';
import { EMPTY_ENTRY, encodeMbrSector, GPT_PROTECTIVE_TYPE, isExtendedType, makeEntry, MBR_MAX_LBA, MBR_SECTOR_SIZE, type MbrEntry } from './mbr.js';

/** Bytes to write at a byte offset of the image. */
export interface SectorWrite {
  readonly offset: bigint;
  readonly bytes: Uint8Array;
}

export interface DosPrimarySpec {
  readonly start: bigint;
  readonly size: bigint;
  /** MBR type byte, e.g. 0x83; an extended type (0x05, 0x0f, 0x85) makes it the container. */
  readonly type: number;
  readonly bootable?: boolean;
}

export interface DosLogicalSpec extends DosPrimarySpec {
  /** Absolute LBA of the EBR describing this logical partition (inside the extended one, before `start`). */
  readonly ebr: bigint;
}

export interface DosLayout {
  readonly diskId: number;
  /** Slots 1–4; `undefined` leaves a slot empty. */
  readonly primaries: readonly (DosPrimarySpec | undefined)[];
  /** Logical partitions in chain order (numbered 5, 6, …); needs an extended primary. */
  readonly logicals?: readonly DosLogicalSpec[];
}

const SECTOR = BigInt(MBR_SECTOR_SIZE);

/** Encodes an MBR and its EBR chain (link entries sized the way sfdisk writes them). */
export function encodeDosTable(layout: DosLayout): SectorWrite[] {
  if (layout.primaries.length > 4) throw new InvalidArgumentError(`Expected at most 4 primary partitions, got \`${layout.primaries.length}\``);
  const primaries = [0, 1, 2, 3].map((i) => layout.primaries[i]);
  const entries = primaries.map((p): MbrEntry => (p ? makeEntry({ type: p.type, bootable: p.bootable, relStart: p.start, sectors: p.size, absStart: p.start }) : EMPTY_ENTRY));
  const writes: SectorWrite[] = [
    { offset: 0n, bytes: encodeMbrSector({ diskId: layout.diskId, entries: entries as [MbrEntry, MbrEntry, MbrEntry, MbrEntry] }) },
  ];
  const logicals = layout.logicals ?? [];
  const ext = primaries.find((p) => p !== undefined && isExtendedType(p.type));
  if (logicals.length === 0) {
    // An empty extended partition still starts with an (empty, signed) EBR, as sfdisk writes it.
    if (ext) writes.push({ offset: ext.start * SECTOR, bytes: encodeMbrSector({ diskId: 0, entries: [EMPTY_ENTRY, EMPTY_ENTRY, EMPTY_ENTRY, EMPTY_ENTRY] }) });
    return writes;
  }
  if (!ext) throw new InvalidArgumentError('Expected an extended primary partition (type 5, f or 85) to hold logical partitions');
  logicals.forEach((logical, i) => {
    if (logical.ebr < ext.start || logical.start <= logical.ebr) {
      throw new InvalidArgumentError(`Expected logical partition ${i + 5} to start after its EBR inside the extended partition, got EBR ${logical.ebr}, start ${logical.start}`);
    }
    const data = makeEntry({ type: logical.type, bootable: logical.bootable, relStart: logical.start - logical.ebr, sectors: logical.size, absStart: logical.start });
    const next = logicals[i + 1];
    const link = next
      ? makeEntry({ type: 0x05, relStart: next.ebr - ext.start, sectors: next.start + next.size - next.ebr, absStart: next.ebr })
      : EMPTY_ENTRY;
    writes.push({ offset: logical.ebr * SECTOR, bytes: encodeMbrSector({ diskId: 0, entries: [data, link, EMPTY_ENTRY, EMPTY_ENTRY] }) });
  });
  return writes;
}

export interface GptLayout {
  readonly diskGuid: string;
  /** Image size in logical sectors. */
  readonly diskSectors: bigint;
  readonly sectorSize?: number;
  readonly entryCount?: number;
  readonly entrySize?: number;
  readonly firstUsableLba?: bigint;
  /** Default: just before the backup entry array (sfdisk's `last-lba` header can lower it). */
  readonly lastUsableLba?: bigint;
  readonly partitions: readonly GptEntry[];
}

/**
 * The protective MBR of a GPT disk: one 0xEE entry from LBA 1 over the disk (capped at 32 bits),
 * CHS end 0xFFFFFF as libfdisk's gpt_mknew_pmbr() writes it (UEFI 2.10 Table 5-4 allows both).
 */
export function encodeProtectiveMbr(diskSectors: bigint, base?: Uint8Array): Uint8Array {
  const size = diskSectors - 1n > MBR_MAX_LBA ? MBR_MAX_LBA : diskSectors - 1n;
  const entry: MbrEntry = { bootIndicator: 0, type: GPT_PROTECTIVE_TYPE, startLba: 1, sectors: Number(size), chsStart: [0x00, 0x02, 0x00], chsEnd: [0xff, 0xff, 0xff] };
  return encodeMbrSector({ diskId: 0, entries: [entry, EMPTY_ENTRY, EMPTY_ENTRY, EMPTY_ENTRY] }, base);
}

/** Both GPT headers and entry arrays plus the protective MBR for `layout`. */
export function encodeGpt(layout: GptLayout): SectorWrite[] {
  const ss = layout.sectorSize ?? 512;
  const entryCount = layout.entryCount ?? DEFAULT_GPT_ENTRIES;
  const entrySize = layout.entrySize ?? GPT_ENTRY_MIN_SIZE;
  const arraySectors = entryArraySectors({ entryCount, entrySize }, ss);
  const lastLba = layout.diskSectors - 1n;
  const firstUsableLba = layout.firstUsableLba ?? 2n + arraySectors;
  const lastUsableLba = layout.lastUsableLba ?? lastLba - arraySectors - 1n;
  if (lastUsableLba < firstUsableLba) throw new InvalidArgumentError(`Expected a disk of more than ${2n * arraySectors + 3n} sectors for a GPT, got \`${layout.diskSectors}\``);
  const array = encodeGptEntries(layout.partitions, { entryCount, entrySize });
  const primary: GptHeader = {
    revision: GPT_REVISION_1_0,
    headerSize: GPT_HEADER_MIN_SIZE,
    myLba: 1n,
    alternateLba: lastLba,
    firstUsableLba,
    lastUsableLba,
    diskGuid: layout.diskGuid,
    entriesLba: 2n,
    entryCount,
    entrySize,
    entriesCrc32: crc32(array),
  };
  const backup = backupHeaderFor(primary, lastLba, ss);
  const s = BigInt(ss);
  const pmbr = new Uint8Array(ss);
  pmbr.set(encodeProtectiveMbr(layout.diskSectors));
  return [
    { offset: 0n, bytes: pmbr },
    { offset: s, bytes: encodeGptHeader(primary, ss) },
    { offset: 2n * s, bytes: array },
    { offset: backup.entriesLba * s, bytes: array },
    { offset: lastLba * s, bytes: encodeGptHeader(backup, ss) },
  ];
}

/** Applies writes to an in-memory image (tests, fixtures). Returns a new array. */
export function applySectorWrites(image: Uint8Array, writes: readonly SectorWrite[]): Uint8Array {
  const out = image.slice();
  for (const w of writes) {
    if (w.offset + BigInt(w.bytes.length) > BigInt(out.length)) throw new InvalidArgumentError(`write at ${w.offset} (${w.bytes.length} bytes) is past the end of the image`);
    out.set(w.bytes, Number(w.offset));
  }
  return out;
}
