import { posix } from 'node:path';
import { listDirectory, readTextFile, resolveInImage } from '../image-path.js';
import { DEFAULT_CONTEXT, applied, joinLines, notApplicable, splitLines, type TemplateOperation } from './types.js';

export const NETWORKD_DIR = '/etc/systemd/network';
/** Suffix of the `.network` files moved aside (networkd reads only `*.network`). */
export const NETWORKD_ASIDE_SUFFIX = '.diskwright-orig';
const MAX_ASIDE_NAMES = 100;

/** The file written for interface `name`: sorts first, so it wins over any later match. */
export function networkdFile(name = 'eth0'): string {
  return posix.join(NETWORKD_DIR, `10-diskwright-${name}.network`);
}

/** Static configuration for systemd-networkd (systemd.network(5): Address takes CIDR). */
export function networkdConfig(name = 'eth0'): string {
  return joinLines([
    `# Written by diskwright template make: static ${name}, placeholders filled per instance.`,
    '[Match]',
    `Name=${name}`,
    '',
    '[Network]',
    'Address=ADDRESS-TMPL/PREFIX-TMPL',
    'Gateway=GATEWAY-TMPL',
    'DNS=NAMESERVER-TMPL',
  ]);
}

/** Name globs of virtual links a `.network` file may match that are not the machine's NIC. */
const VIRTUAL_NAME = /^(lo|br|bond|veth|vnet|virbr|docker|tun|tap|wg|wl|ww|vlan|dummy|team|host0|vt-|ve-|vb-|vz-)/;

/**
 * True when a `.network` file configures an Ethernet NIC: its [Match] names a MAC address,
 * `Type=ether`, or a name (or glob) that is not a virtual link or a wireless one — e.g. the
 * `Name=enp1s0` or `Name=en*` a base system carries. Such a file would not match (or would fight
 * over) the instance's NIC.
 */
export function matchesEthernet(text: string): boolean {
  let section = '';
  let matched = false;
  let virtualized = false;
  for (const raw of splitLines(text)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== 'Match') continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const values = line.slice(eq + 1).trim().split(/\s+/).filter(Boolean);
    if (key === 'Virtualization') virtualized = true;
    if (key === 'MACAddress' || key === 'PermanentMACAddress') matched = true;
    if (key === 'Type' && values.includes('ether')) matched = true;
    if (key === 'Name' && values.some((v) => !v.startsWith('!') && !VIRTUAL_NAME.test(v))) matched = true;
  }
  // systemd's own container/VM-host files match only inside containers or on virtual links.
  return matched && !virtualized;
}

export const networkdOperation: TemplateOperation = {
  name: 'systemd-networkd',
  description: `systemd-networkd: ${NETWORKD_DIR}/*.network files matching an Ethernet NIC (by name such as enp1s0, glob, MAC or Type=ether) moved aside (*${NETWORKD_ASIDE_SUFFIX}, kept) and ${networkdFile()} with static eth0 ADDRESS-TMPL/PREFIX-TMPL, GATEWAY-TMPL, NAMESERVER-TMPL`,
  async apply(fs, context = DEFAULT_CONTEXT) {
    const ours = networkdFile(context.interface);
    const text = networkdConfig(context.interface);
    const dir = await resolveInImage(fs, NETWORKD_DIR);
    if (!dir || dir.stat.kind !== 'directory') return notApplicable(`${NETWORKD_DIR} does not exist`);
    const entries = await listDirectory(fs, NETWORKD_DIR);
    const names = new Set(entries.map((e) => e.name));
    const others: string[] = [];
    for (const entry of entries) {
      const path = posix.join(NETWORKD_DIR, entry.name);
      if (!entry.name.endsWith('.network') || path === ours) continue;
      const file = await readTextFile(fs, path);
      if (file && matchesEthernet(file.text)) others.push(entry.name);
    }
    const current = await readTextFile(fs, ours);
    if (others.length === 0 && !current) return notApplicable(`no .network file for an Ethernet NIC in ${NETWORKD_DIR}`);
    if (others.length === 0 && current?.text === text) return notApplicable(`already the static ${context.interface} configuration`, [{ path: ours, text }]);
    const moved: string[] = [];
    for (const name of others) {
      let aside = `${name}${NETWORKD_ASIDE_SUFFIX}`;
      for (let n = 1; names.has(aside) && n <= MAX_ASIDE_NAMES; n += 1) aside = `${name}${NETWORKD_ASIDE_SUFFIX}.${n}`;
      if (names.has(aside)) continue;
      await fs.rename(posix.join(NETWORKD_DIR, name), posix.join(NETWORKD_DIR, aside));
      names.add(aside);
      moved.push(`${name} → ${aside}`);
    }
    if (current) await fs.rm(ours);
    await fs.writeFile(ours, text, { mode: 0o644, uid: 0, gid: 0 });
    return applied(`wrote ${ours}${moved.length > 0 ? `; moved aside ${moved.join(', ')}` : ''}`, [{ path: ours, text }]);
  },
};
