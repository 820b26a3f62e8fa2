import { readTextFile, replaceText } from '../image-path.js';
import { applied, joinLines, notApplicable, splitLines, type TemplateOperation } from './types.js';

export const INITTAB_PATH = '/etc/inittab';
/** The article's serial console line (inittab(5): id:runlevels:action:process). */
export const SERIAL_GETTY_LINE = 'T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100';

/** An inittab entry whose process runs a getty on ttyS0. */
function isTtyS0Getty(entry: string): boolean {
  const fields = entry.split(':');
  const process = fields.slice(3).join(':');
  return fields.length >= 4 && /getty\b/.test(process) && /(^|\s)(\/dev\/)?ttyS0(\s|$)/.test(process);
}

/**
 * Makes sure inittab runs a getty on ttyS0: unchanged when an active entry already does; else the
 * commented-out `#T0:…` (or a commented ttyS0 getty) line is replaced by {@link SERIAL_GETTY_LINE};
 * else that line is added at the end (with a free id if `T0` is taken). Other lines are kept.
 */
export function rewriteInittab(text: string): string {
  const lines = splitLines(text);
  if (lines.some((line) => !line.trimStart().startsWith('#') && isTtyS0Getty(line.trim()))) return text;
  const commented = lines.findIndex((line) => {
    const match = /^\s*#+\s*(.*)$/.exec(line);
    return match !== null && (match[1]!.startsWith('T0:') || isTtyS0Getty(match[1]!)) && match[1]!.split(':').length >= 4;
  });
  const usedIds = new Set(lines.filter((line) => !line.trimStart().startsWith('#')).map((line) => line.split(':')[0]!.trim()));
  let id = 'T0';
  for (let n = 0; usedIds.has(id) && n < 10; n += 1) id = `S${n}`;
  const entry = `${id}${SERIAL_GETTY_LINE.slice(2)}`;
  if (commented >= 0) lines[commented] = entry;
  else lines.push(entry);
  return joinLines(lines);
}

export const inittabSerialOperation: TemplateOperation = {
  name: 'inittab-serial',
  description: `sysvinit: serial console getty in /etc/inittab (\`${SERIAL_GETTY_LINE}\`, uncommented or added; only if inittab exists)`,
  async apply(fs) {
    const file = await readTextFile(fs, INITTAB_PATH);
    if (!file) return notApplicable(`${INITTAB_PATH} does not exist (not a sysvinit image)`);
    const next = rewriteInittab(file.text);
    if (next === file.text) return notApplicable('a getty on ttyS0 is already enabled');
    await replaceText(fs, file.path, file.stat, next);
    return applied('serial getty on ttyS0 enabled');
  },
};
