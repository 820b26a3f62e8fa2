import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { FileStat } from '../../ext/types.js';
import { listDirectory, readTextFile, replaceText, resolveInImage } from '../image-path.js';
import { findPrimaryInterface, INTERFACES_PATH } from './interfaces.js';
import { DEFAULT_CONTEXT, applied, joinLines, notApplicable, splitLines, type OwnedFile, type TemplateOperation } from './types.js';

export const NM_CONNECTIONS_DIR = '/etc/NetworkManager/system-connections';

/** The [ipv4] keys the static configuration sets (nm-settings-keyfile(5)). */
export const NM_IPV4_KEYS = ['method=manual', 'address1=ADDRESS-TMPL/PREFIX-TMPL,GATEWAY-TMPL', 'dns=NAMESERVER-TMPL;'] as const;
/** [ipv4] keys replaced by ours: addresses, gateway, DNS servers, method. */
const IPV4_REPLACED = /^(method|address\d*|addresses\d*|gateway|dns|ignore-auto-dns)$/;

interface Section {
  readonly name: string | undefined;
  readonly lines: string[];
}

function parseSections(text: string): Section[] {
  const sections: Section[] = [{ name: undefined, lines: [] }];
  for (const line of splitLines(text)) {
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (header) sections.push({ name: header[1]!, lines: [line] });
    else sections[sections.length - 1]!.lines.push(line);
  }
  return sections;
}

function keyOf(line: string): string | undefined {
  const trimmed = line.trim();
  if (trimmed.startsWith('#') || trimmed.startsWith(';')) return undefined;
  const eq = trimmed.indexOf('=');
  return eq > 0 ? trimmed.slice(0, eq).trim() : undefined;
}

function valueOf(section: Section | undefined, key: string): string | undefined {
  const line = section?.lines.find((l) => keyOf(l) === key);
  return line?.slice(line.indexOf('=') + 1).trim();
}

/** The wired connection's `interface-name` (null when unbound), or undefined when not wired. */
export function wiredInterfaceName(text: string): string | null | undefined {
  const connection = parseSections(text).find((s) => s.name === 'connection');
  const type = valueOf(connection, 'type');
  if (type !== 'ethernet' && type !== '802-3-ethernet') return undefined;
  return valueOf(connection, 'interface-name') ?? null;
}

/** True for a wired connection that may be (or already is) bound to `name` (default eth0). */
export function isEth0Ethernet(text: string, name = 'eth0', primary?: string): boolean {
  const iface = wiredInterfaceName(text);
  return iface !== undefined && (iface === null || iface === name || iface === primary);
}

/** The keyfile written when NetworkManager has no wired connection on disk (its automatic "Wired connection 1" lives only in memory). */
export function nmKeyfile(name = 'eth0'): string {
  // A fixed UUID keeps the operation idempotent; instances are separate machines, so sharing it is harmless.
  const uuid = createHash('sha256').update(`diskwright-${name}`).digest('hex');
  return joinLines([
    '# Written by diskwright template make: static address, placeholders filled per instance.',
    '[connection]',
    `id=diskwright-${name}`,
    `uuid=${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-4${uuid.slice(13, 16)}-8${uuid.slice(17, 20)}-${uuid.slice(20, 32)}`,
    'type=ethernet',
    `interface-name=${name}`,
    'autoconnect=true',
    '',
    '[ethernet]',
    '',
    '[ipv4]',
    ...NM_IPV4_KEYS,
    '',
    '[ipv6]',
    'method=auto',
  ]);
}

/**
 * Makes a keyfile connection static on eth0: `interface-name=eth0`, no MAC binding (each instance
 * gets a new MAC), [ipv4] `method=manual` with the placeholder address/gateway/DNS. Other sections
 * and keys stay. Idempotent.
 */
export function rewriteNmConnection(text: string, name = 'eth0'): string {
  const sections = parseSections(text);
  let ipv4 = sections.find((s) => s.name === 'ipv4');
  if (!ipv4) {
    ipv4 = { name: 'ipv4', lines: ['[ipv4]'] };
    sections.push(ipv4);
  }
  for (const section of sections) {
    if (section.name === 'connection') {
      const at = section.lines.findIndex((l) => keyOf(l) === 'interface-name');
      if (at >= 0) section.lines[at] = `interface-name=${name}`;
      else section.lines.splice(1, 0, `interface-name=${name}`);
    } else if (section.name === 'ethernet' || section.name === '802-3-ethernet') {
      const kept = section.lines.filter((l) => keyOf(l) !== 'mac-address');
      section.lines.splice(0, section.lines.length, ...kept);
    } else if (section === ipv4) {
      const kept = section.lines.slice(1).filter((l) => !IPV4_REPLACED.test(keyOf(l) ?? ''));
      section.lines.splice(0, section.lines.length, section.lines[0]!, ...NM_IPV4_KEYS, ...kept);
    }
  }
  return joinLines(sections.flatMap((s) => s.lines));
}

/** Where NetworkManager's own configuration lives: its presence means NetworkManager is installed. */
export const NM_CONFIG_DIR = '/etc/NetworkManager';

export const networkManagerOperation: TemplateOperation = {
  name: 'networkmanager',
  description: `NetworkManager: wired connections in ${NM_CONNECTIONS_DIR}/*.nmconnection (unbound, or bound to the base system's NIC name) become static on eth0 (ADDRESS-TMPL/PREFIX-TMPL, GATEWAY-TMPL, NAMESERVER-TMPL), MAC binding dropped; with none on disk, a static keyfile is written unless ifupdown configures the NIC`,
  async apply(fs, context = DEFAULT_CONTEXT) {
    const name = context.interface;
    const changed: string[] = [];
    const owned: OwnedFile[] = [];
    const wired: { path: string; stat: FileStat; text: string }[] = [];
    for (const entry of await listDirectory(fs, NM_CONNECTIONS_DIR)) {
      if (!entry.name.endsWith('.nmconnection')) continue;
      const file = await readTextFile(fs, posix.join(NM_CONNECTIONS_DIR, entry.name));
      if (file && wiredInterfaceName(file.text) !== undefined) wired.push(file);
    }
    // The base system's NIC name: the first wired connection bound to one other than the target.
    const primary = wired.map((f) => wiredInterfaceName(f.text)).find((n): n is string => typeof n === 'string' && n !== name);
    for (const file of wired) {
      if (!isEth0Ethernet(file.text, name, primary)) continue;
      const next = rewriteNmConnection(file.text, name);
      owned.push({ path: file.path, text: next });
      if (next === file.text) continue;
      // Keyfiles stay as they were (NetworkManager ignores keyfiles that are not root 0600).
      await replaceText(fs, file.path, file.stat, next);
      changed.push(file.path);
    }
    if (owned.length > 0) {
      if (changed.length === 0) return notApplicable(`already static on ${name}`, owned);
      return applied(`static ${name} in ${changed.join(', ')}${primary ? ` (was ${primary})` : ''}`, owned);
    }
    const config = await resolveInImage(fs, NM_CONFIG_DIR);
    if (!config || config.stat.kind !== 'directory') return notApplicable(`no ${NM_CONFIG_DIR} (no NetworkManager)`);
    const interfaces = await readTextFile(fs, INTERFACES_PATH);
    if (interfaces && findPrimaryInterface(interfaces.text) !== undefined) {
      return notApplicable(`ifupdown configures the NIC in ${INTERFACES_PATH} (NetworkManager leaves such interfaces alone)`);
    }
    const path = posix.join(NM_CONNECTIONS_DIR, `diskwright-${name}.nmconnection`);
    const text = nmKeyfile(name);
    const dir = await resolveInImage(fs, NM_CONNECTIONS_DIR);
    if (!dir) await fs.mkdir(NM_CONNECTIONS_DIR, { parents: true, mode: 0o700, uid: 0, gid: 0 });
    await fs.writeFile(path, text, { mode: 0o600, uid: 0, gid: 0 });
    return applied(`no wired keyfile connection: wrote ${path}`, [{ path, text }]);
  },
};
