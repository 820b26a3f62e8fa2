import { posix } from 'node:path';
import { listDirectory, readTextFile, resolveInImage } from '../image-path.js';
import { DEFAULT_CONTEXT, applied, notApplicable, type TemplateOperation } from './types.js';

export const NETPLAN_DIR = '/etc/netplan';
/** The configuration file written for interface `name`. */
export function netplanFile(name = 'eth0'): string {
  return `/etc/netplan/01-diskwright-${name}.yaml`;
}
export const NETPLAN_FILE = netplanFile('eth0');
/** Suffix given to the configurations moved aside (netplan reads only `*.yaml`). */
export const NETPLAN_ASIDE_SUFFIX = '.diskwright-orig';
/** Bounded search for a free `.diskwright-orig.N` name. */
const MAX_ASIDE_NAMES = 100;

/**
 * Static eth0 for netplan (netplan.io reference: `addresses` takes CIDR, so the address is
 * `ADDRESS-TMPL/PREFIX-TMPL`; PREFIX-TMPL is derived from NETMASK-TMPL when rendering).
 */
export function netplanConfig(name = 'eth0'): string {
  return [
  `# Written by diskwright template make: static ${name}, placeholders filled per instance.`,
  'network:',
  '  version: 2',
  '  ethernets:',
  `    ${name}:`,
  '      dhcp4: false',
  '      addresses:',
  '        - ADDRESS-TMPL/PREFIX-TMPL',
  '      routes:',
  '        - to: default',
  '          via: GATEWAY-TMPL',
  '      nameservers:',
  '        addresses:',
  '          - NAMESERVER-TMPL',
  '',
  ].join('\n');
}

/** The configuration for eth0. */
export const NETPLAN_CONFIG = netplanConfig('eth0');

export const netplanOperation: TemplateOperation = {
  name: 'netplan',
  description: `netplan: other /etc/netplan/*.yaml (e.g. a cloud image's DHCP on enp1s0) moved aside (*${NETPLAN_ASIDE_SUFFIX}, kept) and ${NETPLAN_FILE} with static eth0 ADDRESS-TMPL/PREFIX-TMPL, GATEWAY-TMPL, NAMESERVER-TMPL`,
  async apply(fs, context = DEFAULT_CONTEXT) {
    const NETPLAN_FILE = netplanFile(context.interface);
    const NETPLAN_CONFIG = netplanConfig(context.interface);
    const dir = await resolveInImage(fs, NETPLAN_DIR);
    if (!dir || dir.stat.kind !== 'directory') return notApplicable(`${NETPLAN_DIR} does not exist (no netplan)`);
    const entries = await listDirectory(fs, NETPLAN_DIR);
    const others = entries.filter((e) => e.name.endsWith('.yaml') && posix.join(NETPLAN_DIR, e.name) !== NETPLAN_FILE);
    const ours = await readTextFile(fs, NETPLAN_FILE);
    if (others.length === 0 && !ours) return notApplicable(`no *.yaml configuration in ${NETPLAN_DIR}`);
    if (others.length === 0 && ours?.text === NETPLAN_CONFIG) return notApplicable(`already the static ${context.interface} configuration`, [{ path: NETPLAN_FILE, text: NETPLAN_CONFIG }]);
    const names = new Set(entries.map((e) => e.name));
    const moved: string[] = [];
    for (const other of others) {
      let aside = `${other.name}${NETPLAN_ASIDE_SUFFIX}`;
      for (let n = 1; names.has(aside) && n <= MAX_ASIDE_NAMES; n += 1) aside = `${other.name}${NETPLAN_ASIDE_SUFFIX}.${n}`;
      if (names.has(aside)) continue;
      await fs.rename(posix.join(NETPLAN_DIR, other.name), posix.join(NETPLAN_DIR, aside));
      names.add(aside);
      moved.push(`${other.name} → ${aside}`);
    }
    if (ours) await fs.rm(NETPLAN_FILE);
    // netplan warns about configurations readable by others (they may hold secrets).
    await fs.writeFile(NETPLAN_FILE, NETPLAN_CONFIG, { mode: 0o600, uid: 0, gid: 0 });
    const aside = moved.length > 0 ? `; moved aside ${moved.join(', ')}` : '';
    return applied(`wrote ${NETPLAN_FILE}${aside}`, [{ path: NETPLAN_FILE, text: NETPLAN_CONFIG }]);
  },
};
