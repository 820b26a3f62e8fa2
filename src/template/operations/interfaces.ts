import { posix } from 'node:path';
import type { FilesystemSession } from '../../ext/types.js';
import { listDirectory, readTextFile, replaceText } from '../image-path.js';
import { applied, joinLines, notApplicable, splitLines, type TemplateOperation } from './types.js';

export const INTERFACES_PATH = '/etc/network/interfaces';
export const INTERFACES_D = '/etc/network/interfaces.d';

/** The article's static eth0 stanza (ifupdown, interfaces(5)). */
export const ETH0_STATIC_STANZA = [
  'auto eth0',
  'iface eth0 inet static',
  '    address ADDRESS-TMPL',
  '    netmask NETMASK-TMPL',
  '    gateway GATEWAY-TMPL',
] as const;

/** Lines that start a new stanza in interfaces(5); anything else belongs to the current one. */
function isStanzaStart(word: string): boolean {
  return (
    word === 'iface' ||
    word === 'mapping' ||
    word === 'auto' ||
    word === 'source' ||
    word === 'source-directory' ||
    word === 'source-dir' ||
    word === 'rename' ||
    word === 'no-auto-down' ||
    word === 'no-scripts' ||
    word.startsWith('allow-')
  );
}

/**
 * Rewrites an interfaces(5) file so eth0 is configured only by the static placeholder stanza:
 * drops every `iface eth0 inet …` stanza (IPv4; inet6 and aliases such as eth0:1 stay) and eth0
 * from `auto`/`allow-*` lines, then puts {@link ETH0_STATIC_STANZA} where the first eth0 stanza
 * was (or at the end). Everything else — the loopback stanza, other interfaces, `source` lines,
 * comments — is kept as it was. Applying it to its own output changes nothing.
 */
export function rewriteInterfaces(text: string, options: { addStanza?: boolean } = {}): string {
  const out: string[] = [];
  let insertAt: number | undefined;
  let inEth0 = false;
  for (const line of splitLines(text)) {
    const trimmed = line.trim();
    const words = trimmed.split(/\s+/);
    const keyword = words[0] ?? '';
    const comment = trimmed === '' || trimmed.startsWith('#');
    if (!comment && isStanzaStart(keyword)) {
      inEth0 = false;
      if (keyword === 'iface' && words[1] === 'eth0' && words[2] === 'inet') {
        inEth0 = true;
        insertAt ??= out.length;
        continue;
      }
      if (keyword === 'auto' || keyword.startsWith('allow-')) {
        const rest = words.slice(1).filter((name) => name !== 'eth0');
        if (rest.length !== words.length - 1) {
          if (rest.length > 0) out.push(`${keyword} ${rest.join(' ')}`);
          continue;
        }
      }
      out.push(line);
      continue;
    }
    // Option lines of a dropped eth0 stanza go with it; comments and blank lines stay.
    if (inEth0 && !comment) continue;
    out.push(line);
  }
  if (options.addStanza !== false) {
    if (insertAt === undefined) {
      insertAt = out.length;
      if (out.length > 0 && out[out.length - 1]!.trim() !== '') {
        out.push('');
        insertAt += 1;
      }
    }
    out.splice(insertAt, 0, ...ETH0_STATIC_STANZA);
  }
  return joinLines(out);
}

async function rewriteFile(fs: FilesystemSession, path: string): Promise<string | undefined> {
  const file = await readTextFile(fs, path);
  if (!file) return undefined;
  const next = rewriteInterfaces(file.text, { addStanza: false });
  if (next === file.text) return undefined;
  await replaceText(fs, file.path, file.stat, next);
  return file.path;
}

export const networkInterfacesOperation: TemplateOperation = {
  name: 'network-interfaces',
  description:
    'ifupdown: static eth0 in /etc/network/interfaces (ADDRESS/NETMASK/GATEWAY-TMPL), keeping lo and every other stanza; eth0 stanzas in interfaces.d are removed',
  async apply(fs) {
    const main = await readTextFile(fs, INTERFACES_PATH);
    if (!main) return notApplicable(`${INTERFACES_PATH} does not exist (no ifupdown)`);
    const changed: string[] = [];
    const next = rewriteInterfaces(main.text);
    if (next !== main.text) {
      await replaceText(fs, main.path, main.stat, next);
      changed.push(main.path);
    }
    for (const entry of await listDirectory(fs, INTERFACES_D)) {
      if (entry.kind !== 'file' && entry.kind !== 'symlink') continue;
      const other = await rewriteFile(fs, posix.join(INTERFACES_D, entry.name));
      if (other) changed.push(other);
    }
    const files = [{ path: main.path, text: next }];
    if (changed.length === 0) return notApplicable('eth0 already has the static placeholder stanza', files);
    return applied(`static eth0 stanza in ${changed.join(', ')}`, files);
  },
};
