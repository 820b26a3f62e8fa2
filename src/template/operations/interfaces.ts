import { posix } from 'node:path';
import type { FilesystemSession } from '../../ext/types.js';
import { listDirectory, readTextFile, replaceText } from '../image-path.js';
import { DEFAULT_CONTEXT, applied, joinLines, notApplicable, splitLines, type TemplateOperation } from './types.js';

export const INTERFACES_PATH = '/etc/network/interfaces';
export const INTERFACES_D = '/etc/network/interfaces.d';

/** The article's static eth0 stanza (ifupdown, interfaces(5)) for interface `name`. */
export function staticStanza(name = 'eth0'): string[] {
  return [`auto ${name}`, `iface ${name} inet static`, '    address ADDRESS-TMPL', '    netmask NETMASK-TMPL', '    gateway GATEWAY-TMPL'];
}

/** The article's static eth0 stanza. */
export const ETH0_STATIC_STANZA = staticStanza('eth0');

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

/** Interfaces that are never the machine's NIC: loopback, aliases (`eth0:1`), VLANs (`eth0.10`). */
function isPhysicalName(name: string | undefined): name is string {
  return name !== undefined && name !== 'lo' && !name.includes(':') && !name.includes('.');
}

/**
 * The primary interface of an interfaces(5) file: the first `iface NAME inet …` stanza of a
 * physical-looking interface (not lo, no alias or VLAN suffix), e.g. `enp1s0` as the Debian
 * installer writes it. Undefined when there is none.
 */
export function findPrimaryInterface(text: string): string | undefined {
  for (const line of splitLines(text)) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'iface' && words[2] === 'inet' && isPhysicalName(words[1])) return words[1];
  }
  return undefined;
}

export interface RewriteInterfacesOptions {
  /** Add the static stanza (main file) or only remove the replaced ones (interfaces.d). */
  readonly addStanza?: boolean;
  /** The instance's NIC name (default eth0). */
  readonly name?: string;
  /** The base system's primary interface whose stanzas are replaced (default: found in `text`). */
  readonly primary?: string;
}

/**
 * Rewrites an interfaces(5) file so the instance's NIC is configured only by the static
 * placeholder stanza: drops the `iface NAME inet …` stanzas of the primary interface (whatever the
 * base system called it, e.g. `enp1s0`) and of the target name, removes both from `auto`/`allow-*`
 * lines, renames the primary's `inet6` stanza to the target, then puts the static stanza where the
 * first dropped one was (or at the end). Everything else — the loopback stanza, other interfaces,
 * `source` lines, comments — is kept as it was. Applying it to its own output changes nothing.
 */
export function rewriteInterfaces(text: string, options: RewriteInterfacesOptions = {}): string {
  const name = options.name ?? 'eth0';
  const primary = options.primary ?? findPrimaryInterface(text);
  const replaced = new Set([name, ...(primary ? [primary] : [])]);
  const out: string[] = [];
  let insertAt: number | undefined;
  let inReplaced = false;
  for (const line of splitLines(text)) {
    const trimmed = line.trim();
    const words = trimmed.split(/\s+/);
    const keyword = words[0] ?? '';
    const comment = trimmed === '' || trimmed.startsWith('#');
    if (!comment && isStanzaStart(keyword)) {
      if ((keyword === 'auto' || keyword.startsWith('allow-')) && words.slice(1).every((iface) => replaced.has(iface))) {
        // A dropped `auto` line does not end the stanza before it: stray option lines after it go
        // with that stanza (otherwise they would attach to the static stanza on the next run).
        continue;
      }
      inReplaced = false;
      if (keyword === 'iface' && replaced.has(words[1]!) && words[2] === 'inet') {
        inReplaced = true;
        insertAt ??= out.length;
        continue;
      }
      if (keyword === 'iface' && words[1] === primary && primary !== name) {
        out.push(line.replace(/^(\s*iface\s+)\S+/, `$1${name}`));
        continue;
      }
      if (keyword === 'auto' || keyword.startsWith('allow-')) {
        const rest = words.slice(1).filter((iface) => !replaced.has(iface));
        if (rest.length !== words.length - 1) {
          if (rest.length > 0) out.push(`${keyword} ${rest.join(' ')}`);
          continue;
        }
      }
      out.push(line);
      continue;
    }
    // Option lines of a dropped stanza go with it; comments and blank lines stay.
    if (inReplaced && !comment) continue;
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
    out.splice(insertAt, 0, ...staticStanza(name));
  }
  return joinLines(out);
}

async function rewriteFile(fs: FilesystemSession, path: string, name: string, primary: string | undefined): Promise<string | undefined> {
  const file = await readTextFile(fs, path);
  if (!file) return undefined;
  const next = rewriteInterfaces(file.text, { addStanza: false, name, ...(primary ? { primary } : {}) });
  if (next === file.text) return undefined;
  await replaceText(fs, file.path, file.stat, next);
  return file.path;
}

export const networkInterfacesOperation: TemplateOperation = {
  name: 'network-interfaces',
  description:
    'ifupdown: the primary interface\'s stanza (any name, e.g. the installer\'s `allow-hotplug enp1s0`) becomes a static eth0 stanza in /etc/network/interfaces (ADDRESS/NETMASK/GATEWAY-TMPL), keeping lo and every other stanza; its stanzas in interfaces.d are removed',
  async apply(fs, context = DEFAULT_CONTEXT) {
    const main = await readTextFile(fs, INTERFACES_PATH);
    if (!main) return notApplicable(`${INTERFACES_PATH} does not exist (no ifupdown)`);
    const name = context.interface;
    const changed: string[] = [];
    // The primary may be named only in interfaces.d (the main file then just sources it).
    let primary = findPrimaryInterface(main.text);
    const others: string[] = [];
    for (const entry of await listDirectory(fs, INTERFACES_D)) {
      if (entry.kind !== 'file' && entry.kind !== 'symlink') continue;
      others.push(posix.join(INTERFACES_D, entry.name));
      if (primary === undefined) {
        const text = (await readTextFile(fs, posix.join(INTERFACES_D, entry.name)))?.text;
        primary = text === undefined ? undefined : findPrimaryInterface(text);
      }
    }
    const next = rewriteInterfaces(main.text, { name, ...(primary ? { primary } : {}) });
    if (next !== main.text) {
      await replaceText(fs, main.path, main.stat, next);
      changed.push(main.path);
    }
    for (const path of others) {
      const other = await rewriteFile(fs, path, name, primary);
      if (other) changed.push(other);
    }
    const files = [{ path: main.path, text: next }];
    if (changed.length === 0) return notApplicable(`${name} already has the static placeholder stanza`, files);
    const was = primary && primary !== name ? ` (was ${primary})` : '';
    return applied(`static ${name} stanza${was} in ${changed.join(', ')}`, files);
  },
};
