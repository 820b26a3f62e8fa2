/**
 * The sfdisk script format (what `sfdisk --dump` writes), parsed the way util-linux 2.38's
 * libfdisk/src/script.c does: header lines (`label: gpt`) until the first partition, then lines
 * of `[NODE :] start=…, size=…, type=…, bootable, name=…, uuid=…, attrs=…` or the short
 * positional form `start, size, type, bootable`. Values keep sfdisk's meaning of "default".
 */
import { DiskwrightError } from '../errors.js';

/** Header names libfdisk accepts (script.c parse_line_header). */
export const SCRIPT_HEADERS = ['label', 'unit', 'label-id', 'device', 'grain', 'first-lba', 'last-lba', 'table-length', 'sector-size'] as const;
export type ScriptHeader = (typeof SCRIPT_HEADERS)[number];

/** Longest script accepted (a dump of 128 GPT partitions is ~20 KiB). */
export const MAX_SCRIPT_BYTES = 1024 * 1024;

/** A number in a script: sectors, or bytes when written with a unit suffix (`100M`). */
export interface ScriptNumber {
  readonly value: bigint;
  /** True when a suffix made it a byte count (converted with the sector size later). */
  readonly bytes: boolean;
}

/** One partition line, before it is placed on a disk. */
export interface ScriptPartition {
  /** 1-based line number in the script (for error messages). */
  readonly line: number;
  /** 0-based partition number from a `disk.img5 :` prefix; undefined = next free. */
  readonly partno?: number;
  /** undefined = default (the first free, aligned sector). */
  readonly start?: ScriptNumber;
  /** undefined = default (the rest of the free area). */
  readonly size?: ScriptNumber;
  /** The type text as written (`83`, `L`, `swap`, a GUID); undefined = label default. */
  readonly type?: string;
  readonly bootable: boolean;
  readonly name?: string;
  readonly uuid?: string;
  readonly attrs?: string;
}

export interface SfdiskScript {
  readonly headers: Readonly<Partial<Record<ScriptHeader, string>>>;
  /** The line each header came from (for error messages). */
  readonly headerLines: Readonly<Partial<Record<ScriptHeader, number>>>;
  readonly partitions: readonly ScriptPartition[];
  /** Lines sfdisk ignores with a note (unknown headers, `start=0, size=0` entries). */
  readonly ignored: readonly { readonly line: number; readonly reason: string }[];
}

/** A script line that sfdisk would reject: E_SCRIPT naming the line. */
export function scriptError(line: number, message: string, hint = 'fix the line; `sfdisk --dump IMAGE` shows the format'): DiskwrightError {
  return new DiskwrightError('E_SCRIPT', `script line ${line}: ${message}`, { hint, actual: line });
}

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';

/** Cursor over one line; mirrors script.c's next_token()/is_default_value(). */
class LineCursor {
  pos = 0;
  constructor(
    readonly text: string,
    readonly line: number,
  ) {}

  get rest(): string {
    return this.text.slice(this.pos);
  }

  skipBlank(): void {
    while (isBlank(this.text[this.pos])) this.pos++;
  }

  /** `-`, `,`, `;`, end of line or `- ` mean "use the default" (is_default_value). */
  takeDefault(): boolean {
    let p = this.pos;
    while (isBlank(this.text[p])) p++;
    let blank = false;
    if (this.text[p] === '-') {
      const x = ++p;
      while (isBlank(this.text[p])) p++;
      blank = x < p;
    }
    if (this.text[p] === ';' || this.text[p] === ',') {
      this.pos = p + 1;
      return true;
    }
    if (p >= this.text.length || blank) {
      this.pos = p;
      return true;
    }
    return false;
  }

  /** The next token: blank-, comma- or semicolon-terminated, `"quoted"` allowed. */
  token(): string {
    const s = this.text;
    let p = this.pos;
    while (isBlank(s[p])) p++;
    if (p >= s.length) throw scriptError(this.line, `a value is missing at \`${this.rest.trim()}\``);
    let value = '';
    if (s[p] === '"') {
      const close = s.indexOf('"', p + 1);
      if (close < 0) throw scriptError(this.line, `unterminated quote in \`${s.slice(p)}\``);
      value = s.slice(p + 1, close);
      p = close + 1;
    } else {
      const begin = p;
      while (p < s.length && !isBlank(s[p]) && s[p] !== ',' && s[p] !== ';' && s[p] !== '"') p++;
      value = s.slice(begin, p);
    }
    let terminated = false;
    if (isBlank(s[p])) {
      while (isBlank(s[p])) p++;
      terminated = true;
    }
    if (s[p] === ',' || s[p] === ';') {
      p++;
      terminated = true;
    } else if (p >= s.length) terminated = true;
    if (!terminated) throw scriptError(this.line, `unterminated value \`${value}\` before \`${s.slice(p)}\``);
    while (isBlank(s[p])) p++;
    this.pos = p;
    return value;
  }
}

const SUFFIXES = 'KMGTPEZY';

/** util-linux parse_size(): `2048`, `100M`, `1GiB`, `10MB` (decimal), `0x800`. */
export function parseScriptNumber(text: string, line: number, what: string): ScriptNumber {
  const m = /^(0x[0-9a-f]+|[0-9]+)(?:\.([0-9]+))?(?:([KMGTPEZY])(iB|B)?|(B))?$/i.exec(text);
  if (!m || (m[2] !== undefined && m[3] === undefined)) throw scriptError(line, `${what} \`${text}\` is not a number of sectors or a size like 100M`);
  const whole = BigInt(m[1]!.toLowerCase().startsWith('0x') ? m[1]! : m[1]!.replace(/^0+(?=\d)/, ''));
  if (m[3] === undefined) return m[5] ? { value: whole, bytes: true } : { value: whole, bytes: false };
  const base = m[4]?.toUpperCase() === 'B' ? 1000n : 1024n;
  const exp = BigInt(SUFFIXES.indexOf(m[3].toUpperCase()) + 1);
  const mult = base ** exp;
  let value = whole * mult;
  if (m[2] !== undefined) value += (BigInt(m[2]) * mult) / 10n ** BigInt(m[2].length);
  return { value, bytes: true };
}

/** `disk.img5` → 4 (script.c partno_from_devname); undefined when the name ends in no digit. */
function partnoFromDevname(name: string, line: number): number | undefined {
  const m = /([0-9]+)\s*$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n) || n < 1 || n > 0x7fffffff) throw scriptError(line, `partition number in \`${name.trim()}\` is out of range`);
  return n - 1;
}

/** script.c is_header_line(): `name: value` with no `=` on the line. */
function isHeaderLine(s: string): boolean {
  const colon = s.indexOf(':');
  return colon > 0 && colon < s.length - 1 && !s.includes('=');
}

interface MutablePartition {
  line: number;
  partno?: number;
  start?: ScriptNumber;
  size?: ScriptNumber;
  type?: string;
  bootable: boolean;
  name?: string;
  uuid?: string;
  attrs?: string;
}

function parseStart(cur: LineCursor, pa: MutablePartition): void {
  if (cur.takeDefault()) return;
  const tk = cur.token();
  if (tk === '+') return;
  // A leading sign only matters when sfdisk moves an existing partition (-N); a new one takes the number.
  pa.start = parseScriptNumber(tk.replace(/^[+-]/, ''), cur.line, 'start');
}

function parseSize(cur: LineCursor, pa: MutablePartition): void {
  if (cur.takeDefault()) return;
  const tk = cur.token();
  if (tk === '+') return;
  pa.size = parseScriptNumber(tk.replace(/^[+-]/, ''), cur.line, 'size');
}

/** `name=value, …` lines (script.c parse_line_nameval). */
function parseNameValue(s: string, line: number): MutablePartition {
  const pa: MutablePartition = { line, bootable: false };
  const colon = s.indexOf(':');
  const eq = s.indexOf('=');
  let body = s;
  if (colon >= 0 && (eq < 0 || colon < eq)) {
    const partno = partnoFromDevname(s.slice(0, colon), line);
    if (partno !== undefined) pa.partno = partno;
    body = s.slice(colon + 1);
  }
  const cur = new LineCursor(body, line);
  for (;;) {
    cur.skipBlank();
    if (cur.pos >= body.length) break;
    const rest = cur.rest;
    const key = /^([A-Za-z-]+)=/.exec(rest)?.[1]?.toLowerCase();
    if (key !== undefined) cur.pos += key.length + 1;
    if (key === 'start') parseStart(cur, pa);
    else if (key === 'size') parseSize(cur, pa);
    else if (key === 'type' || key === 'id') pa.type = cur.token();
    else if (key === 'name') pa.name = unhexmangle(cur.token());
    else if (key === 'uuid') pa.uuid = cur.token();
    else if (key === 'attrs') pa.attrs = cur.token();
    else if (key === undefined && /^bootable(?=$|[\s,;])/i.test(rest)) {
      cur.token();
      pa.bootable = true;
    } else throw scriptError(line, `unknown field \`${rest.split(/[\s,;]/)[0]}\` (expected start=, size=, type=, bootable, name=, uuid= or attrs=)`);
  }
  return pa;
}

/** `start, size, type, bootable` positional lines (script.c parse_line_valcommas). */
function parseValCommas(s: string, line: number): MutablePartition {
  const pa: MutablePartition = { line, bootable: false };
  const cur = new LineCursor(s, line);
  for (let item = 0; cur.pos < s.length; item++) {
    cur.skipBlank();
    const begin = cur.pos;
    if (item === 0) parseStart(cur, pa);
    else if (item === 1) parseSize(cur, pa);
    else if (item === 2) {
      if (s[cur.pos] === ',' || s[cur.pos] === ';') cur.pos++;
      else if (!cur.takeDefault()) pa.type = cur.token();
    } else if (item === 3) {
      if (s[cur.pos] === ',' || s[cur.pos] === ';') cur.pos++;
      else {
        const tk = cur.token();
        if (tk === '*' || tk === '+') pa.bootable = true;
        else if (tk !== '-') throw scriptError(line, `bootable flag \`${tk}\` must be \`*\`, \`+\` or \`-\``);
      }
    } else throw scriptError(line, `too many fields in \`${s}\` (start, size, type, bootable)`);
    if (begin === cur.pos) cur.pos++;
  }
  return pa;
}

/** Undoes util-linux's `\x20` mangling of names in dumps. */
function unhexmangle(text: string): string {
  return text.replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Parses an sfdisk script. Throws E_SCRIPT naming the first bad line. */
export function parseSfdiskScript(text: string): SfdiskScript {
  if (text.length > MAX_SCRIPT_BYTES) throw new DiskwrightError('E_LIMIT', `the script is ${text.length} bytes, more than the ${MAX_SCRIPT_BYTES} accepted`, { hint: 'pass an sfdisk script, not a disk image' });
  if (text.includes('\0')) throw new DiskwrightError('E_SCRIPT', 'the script contains NUL bytes: is it a disk image rather than an sfdisk script?', { hint: 'pass the text that `sfdisk --dump` writes' });
  const headers: Partial<Record<ScriptHeader, string>> = {};
  const headerLines: Partial<Record<ScriptHeader, number>> = {};
  const partitions: ScriptPartition[] = [];
  const ignored: { line: number; reason: string }[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = index + 1;
    const s = raw.replace(/\r$/, '').replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
    if (s === '' || s.startsWith('#')) return;
    if (partitions.length === 0 && isHeaderLine(s)) {
      const colon = s.indexOf(':');
      const name = s.slice(0, colon).trim();
      const value = s.slice(colon + 1).trim();
      if (!(SCRIPT_HEADERS as readonly string[]).includes(name)) {
        ignored.push({ line, reason: `unknown script header \`${name}\`` });
        return;
      }
      if (name === 'label' && value !== 'dos' && value !== 'gpt') throw scriptError(line, `label \`${value}\` is not supported (dos or gpt)`);
      if (name === 'unit' && value !== 'sectors') throw scriptError(line, `unit \`${value}\` is not supported (only sectors)`);
      headers[name as ScriptHeader] = value;
      headerLines[name as ScriptHeader] = line;
      return;
    }
    if (partitions.length === 0 && /^[A-Za-z-]+:\s*$/.test(s)) throw scriptError(line, `header \`${s}\` has no value`);
    const pa = s.includes('=') ? parseNameValue(s, line) : parseValCommas(s, line);
    // sfdisk.c ignore_partition(): an old sfdisk's "start=0 size=0" placeholder.
    if (pa.start?.value === 0n && pa.size?.value === 0n) {
      ignored.push({ line, reason: 'start=0, size=0 entry' });
      return;
    }
    partitions.push(pa);
  });
  return { headers, headerLines, partitions, ignored };
}
