/**
 * Output compatible with util-linux 2.38 `sfdisk --json IMAGE` and `sfdisk -l -uS IMAGE`, so
 * scripts written against sfdisk keep working. Formats follow sfdisk's source (disks/sfdisk.c,
 * disks/fdisk-list.c, libfdisk field tables, libsmartcols column widths, lib/strutils.c sizes).
 */
import { DEFAULT_GPT_ENTRIES, formatGptAttributes } from './gpt.js';
import { DOS_TYPE_NAMES, GPT_TYPE_NAMES } from './type-names.js';
import type { Partition, PartitionTable } from './types.js';

/** Partition device name as libfdisk builds it: `disk.img1`, but `disk0p1` when the path ends in a digit. */
export function partitionNode(imagePath: string, number: number): string {
  return /[0-9]$/.test(imagePath) ? `${imagePath}p${number}` : `${imagePath}${number}`;
}

/**
 * libfdisk aligns to 1 MiB unless the disk holds at most 4 × 1 MiB (alignment.c topology_get_grain);
 * sfdisk then reports `grain` (the physical sector size, 512 for an image file).
 */
const SMALL_DISK_BYTES = 4n * 1024n * 1024n;

export interface SfdiskPartitionJson {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: true;
  uuid?: string;
  name?: string;
  attrs?: string;
}

export interface SfdiskJson {
  partitiontable: {
    label: 'dos' | 'gpt';
    id: string;
    device: string;
    unit: 'sectors';
    firstlba?: number;
    lastlba?: number;
    'table-length'?: string;
    grain?: string;
    sectorsize: number;
    partitions?: SfdiskPartitionJson[];
  };
}

function partitionJson(table: PartitionTable, p: Partition, imagePath: string): SfdiskPartitionJson {
  const out: SfdiskPartitionJson = { node: partitionNode(imagePath, p.number), start: Number(p.start), size: Number(p.size), type: p.type };
  if (table.label === 'dos') {
    if (p.bootable) out.bootable = true;
    return out;
  }
  if (p.uuid !== undefined) out.uuid = p.uuid;
  if (p.name) out.name = p.name;
  if (p.attributes) {
    const attrs = formatGptAttributes(p.attributes);
    if (attrs) out.attrs = attrs;
  }
  return out;
}

/** The object `sfdisk --json IMAGE` prints (keys in sfdisk's order, omitted where sfdisk omits them). */
export function toSfdiskJson(table: PartitionTable, imagePath: string): SfdiskJson {
  const gpt = table.label === 'gpt';
  const pt: SfdiskJson['partitiontable'] = {
    label: table.label,
    id: table.id,
    device: imagePath,
    unit: 'sectors',
    ...(gpt && table.firstUsableLba !== undefined ? { firstlba: Number(table.firstUsableLba) } : {}),
    ...(gpt && table.lastUsableLba !== undefined ? { lastlba: Number(table.lastUsableLba) } : {}),
    ...(gpt && table.entryCount !== undefined && table.entryCount !== DEFAULT_GPT_ENTRIES ? { 'table-length': String(table.entryCount) } : {}),
    ...(table.diskSize / BigInt(table.sectorSize) <= SMALL_DISK_BYTES / BigInt(table.sectorSize) ? { grain: String(table.sectorSize) } : {}),
    sectorsize: table.sectorSize,
    ...(table.partitions.length > 0 ? { partitions: table.partitions.map((p) => partitionJson(table, p, imagePath)) } : {}),
  };
  return { partitiontable: pt };
}

/** JSON string escaping as util-linux's jsonwrt does it (only `"`, `\` and control characters). */
function jsonString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20) out += ch;
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else out += `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

function jsonValue(value: string | number | boolean): string {
  return typeof value === 'string' ? jsonString(value) : String(value);
}

/** The exact text `sfdisk --json IMAGE` prints (3-space indent, `},{` between partitions). */
export function formatSfdiskJson(table: PartitionTable, imagePath: string): string {
  const { partitiontable: pt } = toSfdiskJson(table, imagePath);
  // 64-bit LBAs are printed from the bigints, exact even past 2^53 (the object form uses numbers).
  const exact: Record<string, bigint | undefined> = { firstlba: table.firstUsableLba, lastlba: table.lastUsableLba };
  const lines = ['{', '   "partitiontable": {'];
  const fields: string[] = [];
  for (const [key, value] of Object.entries(pt)) {
    if (key === 'partitions' || value === undefined) continue;
    fields.push(`      "${key}": ${exact[key] !== undefined ? String(exact[key]) : jsonValue(value as string | number)}`);
  }
  if (pt.partitions) {
    const parts = pt.partitions.map((p, i) => {
      const source = table.partitions[i]!;
      const body = Object.entries(p)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => {
          const text = k === 'start' ? String(source.start) : k === 'size' ? String(source.size) : jsonValue(v as string | number | boolean);
          return `            "${k}": ${text}`;
        })
        .join(',\n');
      return `${body}\n         }`;
    });
    fields.push(`      "partitions": [\n         {\n${parts.join(',{\n')}\n      ]`);
  }
  lines.push(fields.join(',\n'));
  lines.push('   }', '}');
  return `${lines.join('\n')}\n`;
}

/**
 * Human size as util-linux's size_to_human_string(): binary units, rounded half up to one decimal
 * (Size column: `7.6G`) or two decimals with the disk line's `long` form (`9.54 MiB`, `8 GiB`); a
 * trailing zero decimal is dropped.
 */
export function humanSize(bytes: bigint, long = false): string {
  const letters = 'BKMGTPE';
  let exp = 0;
  while (exp < 60 && bytes >= 1n << BigInt(exp + 10)) exp += 10;
  const letter = letters[exp / 10]!;
  let dec = exp ? bytes >> BigInt(exp) : bytes;
  let frac = exp ? bytes & ((1n << BigInt(exp)) - 1n) : 0n;
  if (frac) {
    // Three digits after the point, truncated; util-linux scales first when frac * 1000 would overflow 64 bits.
    frac = frac >= 0xffffffffffffffffn / 1000n ? ((frac / 1024n) * 1000n) >> BigInt(exp - 10) : (frac * 1000n) >> BigInt(exp);
    // Two digits (SIZE_DECIMAL_2DIGITS, the disk line) or one digit kept as tens.
    frac = long ? (frac + 5n) / 10n : ((frac + 50n) / 100n) * 10n;
    if (frac === 100n) {
      dec++;
      frac = 0n;
    }
  }
  const suffix = long ? (letter === 'B' ? ' B' : ` ${letter}iB`) : letter;
  if (!frac) return `${dec}${suffix}`;
  let digits = frac.toString().padStart(2, '0');
  if (digits.endsWith('0')) digits = digits.slice(0, -1);
  return `${dec}.${digits}${suffix}`;
}

interface Column {
  readonly header: string;
  /** libfdisk's width hint (absolute when ≥ 1). */
  readonly hint: number;
  readonly right: boolean;
}

const DOS_COLUMNS: readonly Column[] = [
  { header: 'Device', hint: 10, right: false },
  { header: 'Boot', hint: 1, right: false },
  { header: 'Start', hint: 5, right: true },
  { header: 'End', hint: 5, right: true },
  { header: 'Sectors', hint: 5, right: true },
  { header: 'Size', hint: 5, right: true },
  { header: 'Id', hint: 2, right: true },
  { header: 'Type', hint: 0.1, right: false },
];

const GPT_COLUMNS: readonly Column[] = [
  { header: 'Device', hint: 10, right: false },
  { header: 'Start', hint: 5, right: true },
  { header: 'End', hint: 5, right: true },
  { header: 'Sectors', hint: 5, right: true },
  { header: 'Size', hint: 5, right: true },
  { header: 'Type', hint: 0.1, right: false },
];

function textWidth(text: string): number {
  return [...text].length;
}

/** Column width as libsmartcols computes it for non-terminal output (calculate.c count_column_width). */
function columnWidth(column: Column, cells: readonly string[]): number {
  const min = Math.max(1, textWidth(column.header));
  const data = Math.max(0, ...cells.map(textWidth));
  if (data < min) return min;
  if (column.hint >= 1 && data < column.hint && min < column.hint) return column.hint;
  return data;
}

function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const widths = columns.map((c, i) => columnWidth(c, rows.map((r) => r[i]!)));
  const render = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        const last = i === cells.length - 1;
        const pad = ' '.repeat(Math.max(0, widths[i]! - textWidth(cell)));
        if (columns[i]!.right) return pad + cell;
        return last ? cell : cell + pad;
      })
      .join(' ');
  return [render(columns.map((c) => c.header)), ...rows.map(render)];
}

function typeName(table: PartitionTable, p: Partition): string {
  if (table.label === 'dos') return DOS_TYPE_NAMES.get(Number.parseInt(p.type, 16)) ?? 'unknown';
  return GPT_TYPE_NAMES.get(p.type) ?? 'unknown';
}

/** libfdisk's "not in disk order" check: some partition starts before the one listed before it. */
export function isWrongOrder(table: PartitionTable): boolean {
  let last = 0n;
  for (const p of table.partitions) {
    if (p.start < last) return true;
    last = p.start;
  }
  return false;
}

/** The text `sfdisk -l -uS IMAGE` prints on stdout for this table. */
export function formatSfdiskList(table: PartitionTable, imagePath: string): string {
  const ss = BigInt(table.sectorSize);
  const lines = [
    // sfdisk reports whole sectors: bytes = sectors × sector size, even for an odd-sized file.
    `Disk ${imagePath}: ${humanSize((table.diskSize / ss) * ss, true)}, ${(table.diskSize / ss) * ss} bytes, ${table.diskSize / ss} sectors`,
    `Units: sectors of 1 * ${ss} = ${ss} bytes`,
    `Sector size (logical/physical): ${ss} bytes / ${ss} bytes`,
    `I/O size (minimum/optimal): ${ss} bytes / ${ss} bytes`,
    `Disklabel type: ${table.label}`,
    `Disk identifier: ${table.id}`,
  ];
  if (table.partitions.length > 0) {
    const rows = table.partitions.map((p) => {
      const endSector = p.size > 0n ? p.start + p.size - 1n : p.start;
      const common = [partitionNode(imagePath, p.number)];
      const numbers = [String(p.start), String(endSector), String(p.size), humanSize(p.size * ss)];
      return table.label === 'dos'
        ? [...common, p.bootable ? '*' : '', ...numbers, p.type, typeName(table, p)]
        : [...common, ...numbers, typeName(table, p)];
    });
    lines.push('', ...renderTable(table.label === 'dos' ? DOS_COLUMNS : GPT_COLUMNS, rows));
    if (isWrongOrder(table)) lines.push('', 'Partition table entries are not in disk order.');
  }
  return `${lines.join('\n')}\n`;
}
