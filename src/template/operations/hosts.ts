import { readTextFile, replaceText } from '../image-path.js';
import { applied, joinLines, notApplicable, splitLines, type TemplateOperation } from './types.js';

export const HOSTS_PATH = '/etc/hosts';
/** Debian's convention for the machine's own name (hosts(5), Debian reference §5.1.1). */
export const HOSTS_ENTRY = '127.0.1.1\tHOSTNAME-TMPL SHORTNAME-TMPL';

function firstField(line: string): string | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  return trimmed.split(/\s+/)[0];
}

/**
 * Gives /etc/hosts exactly one `127.0.1.1 HOSTNAME-TMPL SHORTNAME-TMPL` entry (FQDN, then the short
 * name, as the Debian installer writes it): replaces the first 127.0.1.1 line
 * (dropping later duplicates), or adds it after the last 127.0.0.1 line (or at the top). Every
 * other line stays.
 */
export function rewriteHosts(text: string): string {
  const lines = splitLines(text);
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    if (firstField(line) === '127.0.1.1') {
      if (!placed) out.push(HOSTS_ENTRY);
      placed = true;
      continue;
    }
    out.push(line);
  }
  if (!placed) {
    let at = 0;
    out.forEach((line, index) => {
      if (firstField(line) === '127.0.0.1') at = index + 1;
    });
    out.splice(at, 0, HOSTS_ENTRY);
  }
  return joinLines(out);
}

export const hostsOperation: TemplateOperation = {
  name: 'hosts',
  description: '/etc/hosts: `127.0.1.1 HOSTNAME-TMPL SHORTNAME-TMPL` (FQDN and short name; replaces an existing 127.0.1.1 line, keeps the rest)',
  async apply(fs) {
    const file = await readTextFile(fs, HOSTS_PATH);
    if (!file) return notApplicable(`${HOSTS_PATH} does not exist`);
    const next = rewriteHosts(file.text);
    if (next === file.text) return notApplicable('127.0.1.1 already maps to HOSTNAME-TMPL SHORTNAME-TMPL', [{ path: file.path, text: next }]);
    await replaceText(fs, file.path, file.stat, next);
    return applied('127.0.1.1 → HOSTNAME-TMPL SHORTNAME-TMPL', [{ path: file.path, text: next }]);
  },
};
