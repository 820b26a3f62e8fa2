import { posix } from 'node:path';
import { listDirectory, readTextFile, replaceText } from '../image-path.js';
import { applied, joinLines, notApplicable, splitLines, type OwnedFile, type TemplateOperation } from './types.js';

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

/** True for a wired connection that may be (or already is) bound to eth0. */
export function isEth0Ethernet(text: string): boolean {
  const connection = parseSections(text).find((s) => s.name === 'connection');
  const type = valueOf(connection, 'type');
  const iface = valueOf(connection, 'interface-name');
  return (type === 'ethernet' || type === '802-3-ethernet') && (iface === undefined || iface === 'eth0');
}

/**
 * Makes a keyfile connection static on eth0: `interface-name=eth0`, no MAC binding (each instance
 * gets a new MAC), [ipv4] `method=manual` with the placeholder address/gateway/DNS. Other sections
 * and keys stay. Idempotent.
 */
export function rewriteNmConnection(text: string): string {
  const sections = parseSections(text);
  let ipv4 = sections.find((s) => s.name === 'ipv4');
  if (!ipv4) {
    ipv4 = { name: 'ipv4', lines: ['[ipv4]'] };
    sections.push(ipv4);
  }
  for (const section of sections) {
    if (section.name === 'connection') {
      const at = section.lines.findIndex((l) => keyOf(l) === 'interface-name');
      if (at >= 0) section.lines[at] = 'interface-name=eth0';
      else section.lines.splice(1, 0, 'interface-name=eth0');
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

export const networkManagerOperation: TemplateOperation = {
  name: 'networkmanager',
  description: `NetworkManager: wired connections in ${NM_CONNECTIONS_DIR}/*.nmconnection become static on eth0 (ADDRESS-TMPL/PREFIX-TMPL, GATEWAY-TMPL, NAMESERVER-TMPL), MAC binding dropped`,
  async apply(fs) {
    const changed: string[] = [];
    const owned: OwnedFile[] = [];
    for (const entry of await listDirectory(fs, NM_CONNECTIONS_DIR)) {
      if (!entry.name.endsWith('.nmconnection')) continue;
      const file = await readTextFile(fs, posix.join(NM_CONNECTIONS_DIR, entry.name));
      if (!file || !isEth0Ethernet(file.text)) continue;
      const next = rewriteNmConnection(file.text);
      owned.push({ path: file.path, text: next });
      if (next === file.text) continue;
      // Keyfiles stay as they were (NetworkManager ignores keyfiles that are not root 0600).
      await replaceText(fs, file.path, file.stat, next);
      changed.push(file.path);
    }
    if (owned.length === 0) return notApplicable(`no wired keyfile connection in ${NM_CONNECTIONS_DIR}`);
    if (changed.length === 0) return notApplicable('already static on eth0', owned);
    return applied(`static eth0 in ${changed.join(', ')}`, owned);
  },
};
