/**
 * Places the partitions of an sfdisk script on a blank disk exactly where util-linux 2.38's sfdisk
 * puts them: a port of libfdisk's script path (alignment.c, dos.c add_partition/dos_add_partition,
 * gpt.c gpt_add_partition/count_first_last_lba) for an image file (512-byte logical and physical
 * sectors, no topology, 1 MiB grain unless the disk is at most 4 MiB). The result feeds the
 * encoders in encode.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { DiskwrightError } from '../errors.js';
import { DEFAULT_GPT_ENTRIES, GPT_ENTRY_MIN_SIZE, MAX_GPT_ENTRIES, type GptEntry } from './gpt.js';
import type { DosLayout, DosLogicalSpec, DosPrimarySpec, GptLayout } from './encode.js';
import { EXTENDED_TYPES, MBR_MAX_LBA } from './mbr.js';
import { scriptError, type ScriptNumber, type ScriptPartition, type SfdiskScript } from './script.js';
import { DOS_TYPE_NAMES, GPT_TYPE_NAMES } from './type-names.js';

/** The layout a script resolves to on a disk of a given size. */
export type ResolvedLayout = { readonly label: 'dos'; readonly dos: DosLayout } | { readonly label: 'gpt'; readonly gpt: GptLayout };

export interface ResolveOptions {
  /** Disk size in bytes. */
  readonly diskBytes: bigint;
  /** Source of randomness for ids sfdisk generates (tests inject a fixed one). */
  readonly random?: { readonly dosId: () => number; readonly guid: () => string };
}

const SECTOR = 512n;
const MIB_SECTORS = 2048n;
const LINUX_GPT_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

const defaultRandom = {
  dosId: (): number => randomBytes(4).readUInt32LE(0),
  guid: (): string => randomUUID().toUpperCase(),
};

/** Alignment state of libfdisk's context (cxt->grain, cxt->first_lba) for an image file. */
class Alignment {
  /** In sectors. */
  grain: bigint;
  firstLba: bigint;
  constructor(readonly totalSectors: bigint) {
    // alignment.c topology_get_grain / topology_get_first_lba: 1 MiB, or one sector on tiny disks.
    const small = totalSectors <= MIB_SECTORS * 4n;
    this.grain = small ? 1n : MIB_SECTORS;
    this.firstLba = small ? 1n : MIB_SECTORS;
  }

  get required(): boolean {
    return this.grain !== 1n;
  }

  /** fdisk_align_lba(): direction 'up' | 'down' | 'nearest'. */
  align(lba: bigint, direction: 'up' | 'down' | 'nearest'): bigint {
    const g = this.grain;
    if (lba % g === 0n) return lba;
    if (lba < this.firstLba) return this.firstLba;
    if (direction === 'up') return ((lba + g) / g) * g;
    if (direction === 'down') return (lba / g) * g;
    return ((lba + g / 2n) / g) * g;
  }

  /** fdisk_align_lba_in_range(). */
  alignInRange(lba: bigint, start: bigint, stop: bigint): bigint {
    if (start + this.grain <= stop) {
      start = this.align(start, 'up');
      stop = this.align(stop, 'down');
    }
    if (start + this.grain > stop) return lba;
    const aligned = this.align(lba, 'nearest');
    return aligned < start ? start : aligned > stop ? stop : aligned;
  }
}

/** Sectors for a script number (bytes with a suffix are divided by the sector size). */
function sectors(n: ScriptNumber): bigint {
  return n.bytes ? n.value / SECTOR : n.value;
}

function normalizeName(text: string): string {
  return text.replace(/[^0-9A-Za-z]/g, '').toLowerCase();
}

const DOS_CUTS: readonly (readonly [string, string, number])[] = [
  ['L', 'linux', 0x83],
  ['S', 'swap', 0x82],
  ['E', 'extended', 0x05],
  ['Ex', 'extended', 0x05],
  ['U', 'uefi', 0xef],
  ['R', 'raid', 0xfd],
  ['V', 'lvm', 0x8e],
  ['X', 'linuxex', 0x85],
];

const GPT_CUTS: readonly (readonly [string, string, string])[] = [
  ['L', 'linux', LINUX_GPT_TYPE],
  ['S', 'swap', '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F'],
  ['H', 'home', '933AC7E1-2EB4-4F13-B844-0E14E2AEF915'],
  ['U', 'uefi', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'],
  ['R', 'raid', 'A19D880F-05FC-4D3B-A006-743F0F84911E'],
  ['V', 'lvm', 'E6D6D379-F507-44C2-A23C-238F2A3DF928'],
];

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** parttype.c fdisk_label_advparse_parttype(): alias, shortcut, name, then the hex code. */
export function parseDosType(text: string, line: number): number {
  const cut = DOS_CUTS.find(([, alias]) => alias === text) ?? DOS_CUTS.find(([shortcut]) => shortcut === text);
  if (cut) return cut[2];
  const wanted = normalizeName(text);
  for (const [code, name] of DOS_TYPE_NAMES) if (normalizeName(name) === wanted && wanted !== '') return code;
  if (/^(0x)?[0-9a-f]{1,2}$/i.test(text)) return Number.parseInt(text, 16);
  throw scriptError(line, `type \`${text}\` is not a dos type (a hex code like 83, or L, S, E, X, U, R, V, linux, swap, extended)`);
}

/** The GPT type GUID for a script type (GUID, alias, shortcut or name). */
export function parseGptType(text: string, line: number): string {
  const cut = GPT_CUTS.find(([, alias]) => alias === text) ?? GPT_CUTS.find(([shortcut]) => shortcut === text);
  if (cut) return cut[2];
  const wanted = normalizeName(text);
  for (const [guid, name] of GPT_TYPE_NAMES) if (normalizeName(name) === wanted && wanted !== '') return guid;
  if (GUID_RE.test(text)) return text.toUpperCase();
  throw scriptError(line, `type \`${text}\` is not a GPT type (a GUID like ${LINUX_GPT_TYPE}, or L, S, H, U, R, V, linux, swap, home, uefi)`);
}

/** gpt.c gpt_entry_attrs_from_string(). */
export function parseGptAttrs(text: string, line: number): bigint {
  let attrs = 0n;
  let p = 0;
  const s = text;
  while (p < s.length) {
    while (s[p] === ' ' || s[p] === '\t') p++;
    if (p >= s.length) break;
    let bit = -1;
    const rest = s.slice(p);
    const word = [
      ['RequiredPartition', 0],
      ['RequiredPartiton', 0],
      ['LegacyBIOSBootable', 2],
      ['NoBlockIOProtocol', 1],
    ].find(([w]) => rest.startsWith(w as string));
    if (word) {
      bit = word[1] as number;
      p += (word[0] as string).length;
    } else {
      const m = /^(?:GUID:)?([0-9]+)/.exec(rest);
      if (m && Number(m[1]) >= 48 && Number(m[1]) < 64) {
        bit = Number(m[1]);
        p += m[0].length;
      }
    }
    if (bit < 0) throw scriptError(line, `unsupported GPT attribute \`${rest}\` (RequiredPartition, NoBlockIOProtocol, LegacyBIOSBootable, GUID:48…63)`);
    if (p < s.length && s[p] !== ',' && s[p] !== ' ' && s[p] !== '\t') throw scriptError(line, `cannot parse GPT attributes \`${text}\``);
    attrs |= 1n << BigInt(bit);
    while (s[p] === ' ' || s[p] === '\t') p++;
    if (s[p] === ',') p++;
  }
  return attrs;
}

function headerNumber(script: SfdiskScript, name: 'first-lba' | 'last-lba' | 'table-length' | 'sector-size'): bigint | undefined {
  const text = script.headers[name];
  if (text === undefined) return undefined;
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(text)) throw scriptError(script.headerLines[name] ?? 0, `header ${name} \`${text}\` is not a number`);
  return BigInt(text);
}

function checkCommon(script: SfdiskScript): void {
  const ss = headerNumber(script, 'sector-size');
  if (ss !== undefined && ss !== SECTOR) {
    throw scriptError(script.headerLines['sector-size'] ?? 0, `sector-size ${ss} is not supported: image files have 512-byte sectors`, 'remove the sector-size header or set it to 512');
  }
}

/** Resolves a script on a blank disk to the layout sfdisk writes. Throws E_SCRIPT naming the line. */
export function resolveScript(script: SfdiskScript, options: ResolveOptions): ResolvedLayout {
  checkCommon(script);
  const totalSectors = options.diskBytes / SECTOR;
  const random = options.random ?? defaultRandom;
  const label = script.headers.label ?? 'dos';
  if (label === 'gpt') return { label: 'gpt', gpt: resolveGpt(script, totalSectors, random) };
  return { label: 'dos', dos: resolveDos(script, totalSectors, random) };
}

// ---------------------------------------------------------------------------------------------
// dos

interface Pte {
  /** Absolute start and end (inclusive); undefined while cleared. */
  start?: bigint;
  end?: bigint;
  type?: number;
  boot?: boolean;
  /** EBR sector of a logical partition (0 for primaries). */
  offset: bigint;
}

const MAXIMUM_PARTS = 60;

function resolveDos(script: SfdiskScript, totalSectors: bigint, random: { dosId: () => number }): DosLayout {
  let diskId: number;
  const idText = script.headers['label-id'];
  if (idText !== undefined) {
    // dos.c: strtoul(s, 16) — `0x` prefix optional.
    if (!/^(0x)?[0-9a-f]{1,8}$/i.test(idText)) throw scriptError(script.headerLines['label-id'] ?? 0, `label-id \`${idText}\` is not a 32-bit hex number like 0x1234abcd`);
    diskId = Number.parseInt(idText.replace(/^0x/i, ''), 16);
  } else diskId = random.dosId();
  for (const h of ['first-lba', 'last-lba', 'table-length'] as const) headerNumber(script, h);
  const al = new Alignment(totalSectors);
  const ptes: Pte[] = [0, 1, 2, 3].map(() => ({ offset: 0n }));
  let extIndex = -1;
  let extOffset = 0n;
  const used = (pe: Pte): boolean => pe.start !== undefined;

  const diskRanges = (logical: boolean, line: number): [bigint, bigint] => {
    if (logical) {
      if (extIndex < 0) throw scriptError(line, 'a logical partition needs an extended partition (type 5) first');
      return [extOffset + al.firstLba, ptes[extIndex]!.end!];
    }
    const last = totalSectors - 1n > MBR_MAX_LBA ? MBR_MAX_LBA : totalSectors - 1n;
    return [al.firstLba, last];
  };
  /** Start of the area a pte occupies (the EBR and its gap count as used for logicals). */
  const usedStart = (pe: Pte): bigint => (pe.offset ? pe.start! - al.firstLba : pe.start!);

  const lastFreeInRange = (logical: boolean, begin: bigint, end: bigint): bigint | undefined => {
    let last = end;
    let moved: boolean;
    do {
      moved = false;
      for (let i = logical ? 4 : 0; i < ptes.length; i++) {
        const pe = ptes[i]!;
        if (!used(pe)) continue;
        const ps = usedStart(pe);
        if (last >= ps && last <= pe.end!) {
          last = ps - 1n;
          moved = true;
          if (last < begin) return undefined;
        }
      }
    } while (moved);
    return last;
  };
  const firstFreeInRange = (logical: boolean, begin: bigint, end: bigint): bigint | undefined => {
    let first = begin;
    let moved: boolean;
    do {
      moved = false;
      for (let i = logical ? 4 : 0; i < ptes.length; i++) {
        const pe = ptes[i]!;
        if (!used(pe)) continue;
        const ps = usedStart(pe);
        if (first < ps) continue;
        if (first <= pe.end!) {
          first = pe.end! + 1n + (logical ? al.firstLba : 0n);
          moved = true;
          if (first > end) return undefined;
        }
      }
    } while (moved);
    return first;
  };
  const firstFree = (logical: boolean, start: bigint, line: number): bigint | undefined => firstFreeInRange(logical, start, diskRanges(logical, line)[1]);
  const lastFree = (logical: boolean, begin: bigint, stop: bigint): bigint | undefined => {
    let last = stop;
    for (let i = logical ? 4 : 0; i < ptes.length; i++) {
      const pe = ptes[i]!;
      if (!used(pe)) continue;
      const ps = usedStart(pe);
      if ((ps >= begin && ps <= last) || (pe.end! >= begin && pe.end! <= last)) last = ps - 1n;
      if (last < begin) return undefined;
    }
    return last === begin ? stop : last;
  };
  const noSpace = (pa: ScriptPartition): never => {
    throw scriptError(pa.line, 'no free sectors available for this partition', 'make an earlier partition smaller, or the disk larger');
  };

  /** dos.c add_partition() for slot `n` (0-based; ≥ 4 logical), script path only. */
  const addPartition = (n: number, pa: ScriptPartition, type: number): void => {
    const logical = n >= 4;
    const paStart = pa.start === undefined ? undefined : sectors(pa.start);
    const paSize = pa.size === undefined ? undefined : sectors(pa.size);
    let [start, stop] = diskRanges(logical, pa.line);
    const limit0 = lastFreeInRange(logical, start, stop);
    if (limit0 === undefined) noSpace(pa);
    let limit = limit0!;
    if (paStart !== undefined && paStart >= (logical ? extOffset : 1n) && paStart < start) {
      al.firstLba = 1n;
      [start, stop] = diskRanges(logical, pa.line);
    }
    let read = false;
    let temp: bigint;
    do {
      temp = start;
      const first = firstFree(logical, start, pa.line);
      if (first === undefined) noSpace(pa);
      let dflt = first!;
      start = dflt;
      if (n >= 4 && paStart !== undefined && al.firstLba > 1n && temp === start - al.firstLba) {
        al.firstLba = 1n;
        start = paStart;
      }
      let aligned: bigint;
      do {
        aligned = al.alignInRange(dflt, dflt, limit);
        dflt = firstFree(logical, aligned, pa.line) ?? dflt;
      } while (dflt !== aligned && dflt > aligned && dflt < limit);
      if (dflt >= limit) dflt = start;
      if (start > limit) break;
      if (start >= temp + 1n && read) {
        temp = start;
        read = false;
        if (paStart !== undefined) break;
      }
      if (!read && start === temp) {
        if (paStart === undefined) start = dflt;
        else {
          if (paStart < temp || paStart > limit) {
            throw scriptError(pa.line, `start sector ${paStart} is out of range (free sectors here: ${temp}–${limit})`, 'move the partition into free space on the disk');
          }
          start = paStart;
        }
        read = true;
      }
      if (paSize !== undefined) {
        const last = lastFree(logical, start, limit);
        if (last !== undefined && last - start + 1n < paSize) {
          if (paStart !== undefined && paStart <= last) {
            throw scriptError(pa.line, `a partition of ${paSize} sectors at ${start} does not fit: only ${last - start + 1n} sectors are free there`, 'make it smaller or move it');
          }
          start = last + 1n;
          continue;
        }
        if (last === undefined) noSpace(pa);
      }
    } while (start !== temp || !read);
    const pe = ptes[n]!;
    if (n === 4) pe.offset = extOffset;
    else if (n > 4) {
      pe.offset = start - al.firstLba;
      if (pe.offset === extOffset) {
        pe.offset++;
        if (al.firstLba === 1n) start++;
      }
    }
    const last = lastFree(logical, start, limit);
    if (last === undefined) noSpace(pa);
    limit = last!;
    let isrel = false;
    if (start === limit) stop = limit;
    else if (paSize === undefined) stop = limit;
    else {
      stop = start + paSize;
      isrel = pa.size!.bytes;
      if ((!isrel || !al.required) && stop > start) stop -= 1n;
    }
    if (stop > limit) stop = limit;
    if (isrel && stop - start < al.grain) isrel = false;
    if (stop < limit && isrel && al.required) {
      stop = al.alignInRange(stop, start, limit);
      if (stop > start) stop -= 1n;
      if (stop > limit) stop = limit;
    }
    if (logical && pe.offset === 0n) throw scriptError(pa.line, 'cannot place the EBR of this logical partition');
    pe.start = start;
    pe.end = stop;
    pe.type = type;
    pe.boot = pa.bootable;
    if (EXTENDED_TYPES.has(type)) {
      extIndex = n;
      extOffset = start;
    }
  };

  const nextPrimary = (pa: ScriptPartition): number => {
    if (pa.partno !== undefined) {
      if (pa.partno >= 4) throw scriptError(pa.line, `partition ${pa.partno + 1} cannot be primary (1–4)`);
      if (used(ptes[pa.partno]!)) throw scriptError(pa.line, `partition ${pa.partno + 1} is already defined`);
      return pa.partno;
    }
    const free = [0, 1, 2, 3].find((i) => !used(ptes[i]!));
    if (free === undefined) throw scriptError(pa.line, 'all four primary partitions are in use', 'make partition 4 an extended partition (type=5) and put the rest in it as logical partitions');
    return free;
  };
  const addLogical = (pa: ScriptPartition, type: number): void => {
    if (ptes.length >= MAXIMUM_PARTS) throw scriptError(pa.line, `more than ${MAXIMUM_PARTS} partitions`);
    if (EXTENDED_TYPES.has(type)) throw scriptError(pa.line, 'an extended partition already exists; a logical partition cannot be extended');
    ptes.push({ offset: 0n });
    try {
      addPartition(ptes.length - 1, pa, type);
    } catch (error) {
      ptes.pop();
      throw error;
    }
  };
  const addPrimary = (pa: ScriptPartition, type: number): void => {
    if (extIndex >= 0 && EXTENDED_TYPES.has(type)) throw scriptError(pa.line, 'an extended partition already exists (a dos disk holds one)');
    addPartition(nextPrimary(pa), pa, type);
  };

  for (const pa of script.partitions) {
    if (pa.name !== undefined || pa.uuid !== undefined || pa.attrs !== undefined) {
      throw scriptError(pa.line, 'name=, uuid= and attrs= are GPT fields; a dos partition has none', 'remove them or use `label: gpt`');
    }
    const type = pa.type === undefined ? 0x83 : parseDosType(pa.type, pa.line);
    const paStart = pa.start === undefined ? undefined : sectors(pa.start);
    const ext = extIndex >= 0 ? ptes[extIndex]! : undefined;
    if (paStart !== undefined && ext && paStart >= extOffset && paStart <= ext.end!) {
      if (pa.partno !== undefined && pa.partno < 4) throw scriptError(pa.line, `partition ${pa.partno + 1} starts inside the extended partition, so it must be logical (5 or more)`);
      addLogical(pa, type);
    } else if (paStart !== undefined && ext) {
      if (pa.partno !== undefined && pa.partno >= 4) throw scriptError(pa.line, `logical partition ${pa.partno + 1} must start inside the extended partition (sectors ${extOffset}–${ext.end})`);
      addPrimary(pa, type);
    } else if (pa.partno !== undefined && pa.partno < 4) addPrimary(pa, type);
    else if (pa.partno !== undefined) {
      if (!ext) throw scriptError(pa.line, `logical partition ${pa.partno + 1} needs an extended partition (type=5) first`);
      addLogical(pa, type);
    } else {
      // dos_add_partition(): a primary while a slot and space are free, else a logical.
      let first = al.firstLba;
      let freePrimary = 0;
      let freeSectors = false;
      for (let i = 0; i < 4; i++) {
        const pe = ptes[i]!;
        if (used(pe)) {
          if (first + al.grain <= pe.start!) freeSectors = true;
          first = pe.start! + (pe.end! - pe.start! + 1n);
        } else freePrimary++;
      }
      if (first + al.grain - 1n <= totalSectors - 1n) freeSectors = true;
      if (freePrimary === 0 || !freeSectors) {
        if (!ext) throw scriptError(pa.line, freePrimary ? 'no space is left for a primary partition' : 'all four primary partitions are in use', 'make one of them an extended partition (type=5) to hold logical partitions');
        if (paStart !== undefined) throw scriptError(pa.line, freePrimary ? 'no space is left for a primary partition' : 'all four primary partitions are in use');
        addLogical(pa, type);
      } else addPrimary(pa, type);
    }
  }
  const spec = (pe: Pte): DosPrimarySpec => ({ start: pe.start!, size: pe.end! - pe.start! + 1n, type: pe.type!, bootable: pe.boot === true });
  const primaries = ptes.slice(0, 4).map((pe) => (used(pe) ? spec(pe) : undefined));
  const logicals: DosLogicalSpec[] = ptes.slice(4).map((pe) => ({ ...spec(pe), ebr: pe.offset }));
  return { diskId, primaries, logicals };
}

// ---------------------------------------------------------------------------------------------
// gpt

interface GptSlot {
  start: bigint;
  end: bigint;
}

function resolveGpt(script: SfdiskScript, totalSectors: bigint, random: { guid: () => string }): GptLayout {
  const al = new Alignment(totalSectors);
  let diskGuid: string;
  const idText = script.headers['label-id'];
  if (idText !== undefined) {
    if (!GUID_RE.test(idText)) throw scriptError(script.headerLines['label-id'] ?? 0, `label-id \`${idText}\` is not a GUID`);
    diskGuid = idText.toUpperCase();
  } else diskGuid = random.guid();
  // gpt.c count_first_last_lba().
  let nents = headerNumber(script, 'table-length') ?? BigInt(DEFAULT_GPT_ENTRIES);
  if (nents < 1n || nents > BigInt(MAX_GPT_ENTRIES)) throw scriptError(script.headerLines['table-length'] ?? 0, `table-length ${nents} is outside 1–${MAX_GPT_ENTRIES}`);
  const arraySectors = (n: bigint): bigint => (n * BigInt(GPT_ENTRY_MIN_SIZE) + SECTOR - 1n) / SECTOR;
  let flba = 0n;
  let llba = 0n;
  for (; nents > 0n; nents--) {
    const es = arraySectors(nents);
    if (totalSectors < 2n + es) continue;
    llba = totalSectors - 2n - es;
    flba = es + 2n;
    if (llba >= flba) break;
  }
  if (nents === 0n) throw new DiskwrightError('E_OUT_OF_RANGE', `the disk (${totalSectors} sectors) is too small for a GPT`, { hint: 'make the image larger' });
  let first = headerNumber(script, 'first-lba') ?? 0n;
  if (first !== 0n && (first < flba || first > llba)) throw scriptError(script.headerLines['first-lba'] ?? 0, `first-lba ${first} is out of range (${flba}–${llba})`);
  let last = headerNumber(script, 'last-lba') ?? 0n;
  if (last !== 0n && (last > llba || last < flba)) throw scriptError(script.headerLines['last-lba'] ?? 0, `last-lba ${last} is out of range (${flba}–${llba})`);
  if (last === 0n) last = llba;
  if (first === 0n) first = flba < al.firstLba && al.firstLba < last ? al.firstLba : flba;
  // gpt_reset_alignment(): follow the new header.
  al.firstLba = first;
  const firstUsable = first;
  const lastUsable = last;
  const count = Number(nents);
  const slots: (GptSlot | undefined)[] = Array.from({ length: count }, () => undefined);
  const entries: GptEntry[] = [];

  const firstAvailable = (start: bigint): bigint => {
    let f = start < firstUsable ? firstUsable : start;
    let moved: boolean;
    do {
      moved = false;
      for (const e of slots) {
        if (!e || f < e.start) continue;
        if (f <= e.end) {
          f = e.end + 1n;
          moved = true;
        }
      }
    } while (moved);
    return f > lastUsable ? 0n : f;
  };
  const lastFreeFrom = (start: bigint): bigint => {
    let nearest = lastUsable;
    for (const e of slots) {
      const ps = e?.start ?? 0n;
      if (nearest > ps && ps > start) nearest = ps - 1n;
    }
    return nearest;
  };
  const firstInLargest = (): bigint => {
    let start = 0n;
    let selectedSize = 0n;
    let selected = 0n;
    for (;;) {
      const f = firstAvailable(start);
      if (f === 0n) break;
      const l = lastFreeFrom(f);
      if (l - f + 1n > selectedSize) {
        selectedSize = l - f + 1n;
        selected = f;
      }
      start = l + 1n;
    }
    return selected;
  };

  for (const pa of script.partitions) {
    const line = pa.line;
    let partnum: number;
    if (pa.partno !== undefined) {
      if (pa.partno >= count) throw scriptError(line, `partition ${pa.partno + 1} is beyond the ${count} entries of the GPT`);
      partnum = pa.partno;
    } else {
      const free = slots.findIndex((s) => s === undefined);
      if (free < 0) throw scriptError(line, `all ${count} GPT entries are in use`);
      partnum = free;
    }
    if (slots[partnum]) throw scriptError(line, `partition ${partnum + 1} is already defined`);
    if (firstInLargest() === 0n) throw scriptError(line, 'no free sectors available for this partition', 'make an earlier partition smaller, or the disk larger');
    const typeGuid = pa.type === undefined ? LINUX_GPT_TYPE : parseGptType(pa.type, line);
    const paStart = pa.start === undefined ? undefined : sectors(pa.start);
    const paSize = pa.size === undefined ? undefined : sectors(pa.size);
    let dfltF = firstInLargest();
    const dfltL0 = lastFreeFrom(dfltF);
    if (paStart === undefined && dfltL0 - dfltF + 1n < al.grain) throw scriptError(line, 'not enough free sectors for this partition (less than 1 MiB free)');
    dfltF = al.alignInRange(dfltF, dfltF, dfltL0);
    let userF: bigint;
    if (paStart === undefined) userF = dfltF;
    else {
      if (paStart !== firstAvailable(paStart)) throw scriptError(line, `sector ${paStart} is already used (or outside the usable sectors ${firstUsable}–${lastUsable})`, 'move the partition into free space');
      userF = paStart;
    }
    const maxL = lastFreeFrom(userF);
    let dfltL = maxL;
    if (maxL === lastUsable) dfltL = al.alignInRange(maxL, userF, maxL) - 1n;
    let userL: bigint;
    if (paSize === undefined) userL = dfltL;
    else {
      userL = userF + paSize - 1n;
      if (userL !== dfltL && pa.size!.bytes && al.required && userL - userF > al.grain) {
        userL = al.alignInRange(userL, userF, dfltL);
        if (userL > userF) userL -= 1n;
      }
    }
    if (userF > userL) throw scriptError(line, `cannot create partition ${partnum + 1}: it would end (${userL}) before it starts (${userF})`);
    if (userL > lastUsable) throw scriptError(line, `partition ${partnum + 1} ends at sector ${userL}, past the last usable GPT sector ${lastUsable}`, 'make it smaller or the disk larger');
    if (userF < firstUsable) throw scriptError(line, `partition ${partnum + 1} starts at sector ${userF}, before the first usable GPT sector ${firstUsable}`);
    // sfdisk checks overlap with later partitions only by the start; an end running into one is an overlap too.
    for (const other of slots) {
      if (other && userF <= other.end && other.start <= userL) throw scriptError(line, `partition ${partnum + 1} (sectors ${userF}–${userL}) overlaps sectors ${other.start}–${other.end}`);
    }
    let uniqueGuid: string;
    if (pa.uuid !== undefined) {
      if (!GUID_RE.test(pa.uuid)) throw scriptError(line, `uuid \`${pa.uuid}\` is not a GUID`);
      uniqueGuid = pa.uuid.toUpperCase();
    } else uniqueGuid = random.guid();
    if (pa.bootable) throw scriptError(line, '`bootable` is a dos flag; on GPT use attrs=LegacyBIOSBootable', 'replace bootable with attrs=LegacyBIOSBootable');
    const name = pa.name ?? '';
    if (name.length > 36) throw scriptError(line, `name \`${name}\` is longer than the 36 UTF-16 units a GPT entry holds`);
    slots[partnum] = { start: userF, end: userL };
    entries.push({ index: partnum + 1, typeGuid, uniqueGuid, firstLba: userF, lastLba: userL, attributes: pa.attrs === undefined ? 0n : parseGptAttrs(pa.attrs, line), name });
  }
  return { diskGuid, diskSectors: totalSectors, entryCount: count, firstUsableLba: firstUsable, lastUsableLba: lastUsable, partitions: entries };
}
