/**
 * Version ordering of GNU `sort -V` / `ls -v` (gnulib filevercmp): file suffixes
 * (`(\.[A-Za-z~][A-Za-z0-9~]*)*$`) are compared last; the rest with Debian's verrevcmp — runs of
 * digits numerically, other runs character by character where `~` sorts before everything
 * (even the end), letters before other characters.
 */
export function compareVersions(a: string, b: string): number {
  const result = filevercmp(a, b);
  if (result !== 0) return result < 0 ? -1 : 1;
  // sort's last-resort comparison of the whole line.
  return a < b ? -1 : a > b ? 1 : 0;
}

function filevercmp(a: string, b: string): number {
  if (a === '' || b === '') return a === b ? 0 : a === '' ? -1 : 1;
  // ".", "..", then other hidden names, then the rest.
  if (a.startsWith('.')) {
    if (!b.startsWith('.')) return -1;
    for (const special of ['.', '..']) {
      if (a === special) return b === special ? 0 : -1;
      if (b === special) return 1;
    }
  } else if (b.startsWith('.')) return 1;
  const aPrefix = prefixLength(a);
  const bPrefix = prefixLength(b);
  const result = verrevcmp(a.slice(0, aPrefix), b.slice(0, bPrefix));
  if (result !== 0 || (aPrefix === a.length && bPrefix === b.length)) return result;
  return verrevcmp(a, b);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isAlpha(c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/** Length without the file-name suffix `(\.[A-Za-z~][A-Za-z0-9~]*)*$` (gnulib file_prefixlen). */
function prefixLength(s: string): number {
  let i = 0;
  for (;;) {
    const prefix = i;
    while (i + 1 < s.length && s[i] === '.' && (isAlpha(s[i + 1]) || s[i + 1] === '~')) {
      for (i += 2; i < s.length && (isAlpha(s[i]) || isDigit(s[i]) || s[i] === '~'); i += 1) {
        /* skip the suffix word */
      }
    }
    if (i >= s.length) return prefix;
    i += 1;
  }
}

/** Weight of a non-digit character (dpkg/gnulib `order`): `~` < end < letters < others. */
function order(s: string, i: number, end: number): number {
  if (i >= end) return 0;
  const c = s[i]!;
  if (isDigit(c)) return 0;
  if (isAlpha(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = order(a, i, a.length);
      const bc = order(b, j, b.length);
      if (ac !== bc) return ac - bc;
      i += 1;
      j += 1;
    }
    while (a[i] === '0') i += 1;
    while (b[j] === '0') j += 1;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i += 1;
      j += 1;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}
