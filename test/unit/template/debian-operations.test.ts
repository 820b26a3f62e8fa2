/**
 * The operations added for installed systems, on real Debian 12 file layouts (fixtures/debian12,
 * extracted from the Debian packages) and on what the Debian installer writes.
 */
import { describe, expect, it } from 'vitest';
import { TEMPLATE_OPERATIONS } from '../../../src/template/operations/index.js';
import { FSTAB_NOTE, fstabKernelArgs, rewriteFstab } from '../../../src/template/operations/fstab.js';
import { findPrimaryInterface, rewriteInterfaces } from '../../../src/template/operations/interfaces.js';
import { matchesEthernet, networkdConfig } from '../../../src/template/operations/networkd.js';
import { nmKeyfile } from '../../../src/template/operations/networkmanager.js';
import { SYSV_KEYGEN_HOOK } from '../../../src/template/operations/systemd.js';
import type { OperationContext, TemplateOperation } from '../../../src/template/operations/types.js';
import { renderPlaceholders } from '../../../src/template/placeholders.js';
import { debianFile, debianTree } from '../../helpers/fixture-tree.js';
import { memoryFs, type TreeSpec } from '../../helpers/memory-fs.js';

function op(name: string): TemplateOperation {
  const found = TEMPLATE_OPERATIONS.find((o) => o.name === name);
  if (!found) throw new Error(`no operation ${name}`);
  return found;
}

const ROOT_UUID = '0b3f1c2e-7d4a-4e8b-9a6c-5d2e1f0a9b8c';
const SWAP_UUID = 'e4c1a2b3-5d6e-4f70-8a9b-0c1d2e3f4a5b';
const CONTEXT: OperationContext = { interface: 'eth0', filesystem: { uuid: ROOT_UUID, label: 'root' } };

/** Applies an operation twice: the second run must report not-applicable and change nothing. */
async function applyTwice(name: string, spec: TreeSpec, context: OperationContext = CONTEXT) {
  const fs = memoryFs(spec);
  const first = await op(name).apply(fs, context);
  const after = fs.snapshot();
  fs.mutations = 0;
  const second = await op(name).apply(fs, context);
  expect(second.status).toBe('not-applicable');
  expect(fs.mutations).toBe(0);
  expect(fs.snapshot()).toEqual(after);
  return { fs, first, tree: after };
}

/** What the Debian 12 installer writes for a disk with a root and a swap partition. */
const INSTALLER_FSTAB = [
  '# /etc/fstab: static file system information.',
  '#',
  '# <file system> <mount point>   <type>  <options>       <dump>  <pass>',
  '# / was on /dev/vda1 during installation',
  `UUID=${ROOT_UUID} /               ext4    errors=remount-ro 0       1`,
  '# swap was on /dev/vda5 during installation',
  `UUID=${SWAP_UUID} none            swap    sw              0       0`,
  '/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0',
  '',
].join('\n');

describe('fstab', () => {
  it('comments out the installer\'s swap line with a note, names the root by FSUUID-TMPL and asks for noresume', async () => {
    const { first, tree } = await applyTwice('fstab', { '/etc/fstab': INSTALLER_FSTAB });
    expect(first.status).toBe('applied');
    expect(first.detail).toBe(`root UUID=${ROOT_UUID} → UUID=FSUUID-TMPL; commented out none UUID=${SWAP_UUID}`);
    expect(first.kernelArgs).toEqual(['noresume']);
    const text = tree['/etc/fstab']!.replace(/^file 644 0:0 /, '');
    expect(text).toContain('UUID=FSUUID-TMPL /               ext4    errors=remount-ro 0       1\n');
    expect(text).toContain(`${FSTAB_NOTE}UUID=${SWAP_UUID} none            swap    sw              0       0\n`);
    expect(text).toContain('/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0\n');
    expect(renderPlaceholders(text, { 'FSUUID-TMPL': ROOT_UUID })).toContain(`UUID=${ROOT_UUID} / `);
  });

  it('comments out data and swap entries by LABEL, PARTUUID, PARTLABEL and device, keeping pseudo, network, bind and noauto entries', () => {
    const text = [
      '/dev/sda1 / ext4 defaults 0 1',
      'LABEL=data /srv ext4 defaults 0 2',
      'PARTUUID=1234abcd-05 none swap sw 0 0',
      'PARTLABEL=home /home xfs defaults 0 2',
      '/dev/mapper/vg-var /var ext4 defaults 0 2',
      '/dev/disk/by-id/ata-X-part3 /opt ext4 defaults 0 2',
      'proc /proc proc defaults 0 0',
      'tmpfs /tmp tmpfs size=1G 0 0',
      'nas:/export /mnt/nas nfs defaults 0 0',
      '/srv/www /var/www none bind 0 0',
      'LABEL=backup /backup ext4 noauto 0 0',
      '/swapfile none swap sw 0 0',
      `UUID=${ROOT_UUID} /boot-alias ext4 defaults 0 2`,
      '',
    ].join('\n');
    const result = rewriteFstab(text, CONTEXT.filesystem);
    expect(result.rootWas).toBe('/dev/sda1');
    expect(result.commented).toEqual(['/srv LABEL=data', 'none PARTUUID=1234abcd-05', '/home PARTLABEL=home', '/var /dev/mapper/vg-var', '/opt /dev/disk/by-id/ata-X-part3']);
    expect(result.swapRemoved).toBe(true);
    for (const kept of ['proc /proc', 'tmpfs /tmp', 'nas:/export', '/srv/www /var/www', 'LABEL=backup /backup', '/swapfile none']) {
      expect(result.text).toMatch(new RegExp(`^${kept.replace(/[/.]/g, '\\$&')}`, 'm'));
    }
    expect(result.text).toContain('UUID=FSUUID-TMPL /boot-alias ext4');
    expect(rewriteFstab(result.text, CONTEXT.filesystem).text).toBe(result.text);
    expect(fstabKernelArgs(result.text)).toEqual(['noresume']);
  });

  it('keeps a root named by the filesystem\'s own LABEL or /dev/vda, and leaves mmdebstrap\'s unconfigured fstab alone', async () => {
    expect(rewriteFstab('LABEL=root / ext4 defaults 0 1\n', CONTEXT.filesystem).text).toBe('LABEL=root / ext4 defaults 0 1\n');
    expect(rewriteFstab('/dev/vda / ext4 defaults 0 1\n', CONTEXT.filesystem).text).toBe('/dev/vda / ext4 defaults 0 1\n');
    const real = await debianFile('etc/fstab');
    const outcome = await op('fstab').apply(memoryFs({ '/etc/fstab': real }), CONTEXT);
    expect(outcome.status).toBe('not-applicable');
    expect(outcome.kernelArgs).toEqual([]);
  });
});

describe('network configuration for the instance\'s eth0', () => {
  const INSTALLER_INTERFACES = [
    'source /etc/network/interfaces.d/*',
    '',
    '# The loopback network interface',
    'auto lo',
    'iface lo inet loopback',
    '',
    '# The primary network interface',
    'allow-hotplug enp1s0',
    'iface enp1s0 inet dhcp',
    '# This is an autoconfigured IPv6 interface',
    'iface enp1s0 inet6 auto',
    '',
  ].join('\n');

  it('turns the installer\'s `allow-hotplug enp1s0` DHCP stanza into the static eth0 stanza and renames its inet6 stanza', async () => {
    expect(findPrimaryInterface(INSTALLER_INTERFACES)).toBe('enp1s0');
    const { first, tree } = await applyTwice('network-interfaces', { '/etc/network/interfaces': INSTALLER_INTERFACES });
    expect(first.detail).toBe('static eth0 stanza (was enp1s0) in /etc/network/interfaces');
    expect(tree['/etc/network/interfaces']).toBe(
      `file 644 0:0 ${[
        'source /etc/network/interfaces.d/*',
        '',
        '# The loopback network interface',
        'auto lo',
        'iface lo inet loopback',
        '',
        '# The primary network interface',
        'auto eth0',
        'iface eth0 inet static',
        '    address ADDRESS-TMPL',
        '    netmask NETMASK-TMPL',
        '    gateway GATEWAY-TMPL',
        '# This is an autoconfigured IPv6 interface',
        'iface eth0 inet6 auto',
        '',
      ].join('\n')}`,
    );
  });

  it('finds the primary interface in interfaces.d when the real Debian interfaces file only sources it, and honours --interface', async () => {
    const real = await debianFile('etc/network/interfaces');
    const { first, tree } = await applyTwice('network-interfaces', {
      '/etc/network/interfaces': real,
      '/etc/network/interfaces.d/ens3': 'allow-hotplug ens3\niface ens3 inet dhcp\n',
    });
    expect(first.status).toBe('applied');
    expect(tree['/etc/network/interfaces.d/ens3']).toBe('file 644 0:0 ');
    expect(tree['/etc/network/interfaces']).toContain('auto eth0\niface eth0 inet static\n');
    expect(rewriteInterfaces('allow-hotplug enp1s0\niface enp1s0 inet dhcp\n', { name: 'enp1s0' })).toBe('auto enp1s0\niface enp1s0 inet static\n    address ADDRESS-TMPL\n    netmask NETMASK-TMPL\n    gateway GATEWAY-TMPL\n');
  });

  it('moves systemd\'s real 80-ethernet.network aside for a static eth0 .network file, but not container, tun or Wi-Fi ones', async () => {
    const ethernet = await debianFile('usr/lib/systemd/network/80-ethernet.network.example');
    expect(matchesEthernet(ethernet)).toBe(true);
    expect(matchesEthernet('[Match]\nName=enp1s0\n[Network]\nDHCP=yes\n')).toBe(true);
    expect(matchesEthernet('[Match]\nMACAddress=52:54:00:12:34:56\n[Network]\nDHCP=yes\n')).toBe(true);
    for (const other of ['80-container-host0.network', '80-vm-vt.network', '80-wifi-station.network.example']) {
      expect(matchesEthernet(await debianFile(`usr/lib/systemd/network/${other}`)), other).toBe(false);
    }
    const { first, tree } = await applyTwice('systemd-networkd', {
      '/etc/systemd/network/80-ethernet.network': ethernet,
      '/etc/systemd/network/90-vt.network': await debianFile('usr/lib/systemd/network/80-vm-vt.network'),
    });
    expect(first.detail).toBe('wrote /etc/systemd/network/10-diskwright-eth0.network; moved aside 80-ethernet.network → 80-ethernet.network.diskwright-orig');
    expect(tree['/etc/systemd/network/10-diskwright-eth0.network']).toBe(`file 644 0:0 ${networkdConfig('eth0')}`);
    expect(tree['/etc/systemd/network/90-vt.network']).toMatch(/Name=vt-\*/);
    expect(renderPlaceholders(networkdConfig('eth0'), { 'ADDRESS-TMPL': '10.0.0.5', 'NETMASK-TMPL': '255.255.255.0', 'GATEWAY-TMPL': '10.0.0.1', 'NAMESERVER-TMPL': '10.0.0.2' })).toContain('Address=10.0.0.5/24\nGateway=10.0.0.1\nDNS=10.0.0.2\n');
  });

  it('writes a root-only static keyfile when NetworkManager (real Debian config) has no connection on disk', async () => {
    const { first, tree, fs } = await applyTwice('networkmanager', {
      '/etc/NetworkManager/NetworkManager.conf': await debianFile('etc/NetworkManager/NetworkManager.conf'),
      '/etc/NetworkManager/system-connections': { dir: true, mode: 0o755 },
    });
    expect(first.detail).toBe('no wired keyfile connection: wrote /etc/NetworkManager/system-connections/diskwright-eth0.nmconnection');
    expect(tree['/etc/NetworkManager/system-connections/diskwright-eth0.nmconnection']).toBe(`file 600 0:0 ${nmKeyfile('eth0')}`);
    expect(nmKeyfile('eth0')).toMatch(/^interface-name=eth0$/m);
    expect(nmKeyfile('eth0')).toMatch(/^uuid=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/m);
    expect((await fs.stat('/etc/NetworkManager/system-connections/diskwright-eth0.nmconnection')).uid).toBe(0);
  });

  it('rebinds a keyfile bound to the base system\'s NIC name, and leaves NetworkManager alone when ifupdown configures the NIC', async () => {
    const bound = '[connection]\nid=Wired connection 1\ntype=ethernet\ninterface-name=enp1s0\n\n[ipv4]\nmethod=auto\n';
    const { first, tree } = await applyTwice('networkmanager', {
      '/etc/NetworkManager/NetworkManager.conf': await debianFile('etc/NetworkManager/NetworkManager.conf'),
      '/etc/NetworkManager/system-connections/Wired connection 1.nmconnection': { content: bound, mode: 0o600 },
    });
    expect(first.detail).toContain('(was enp1s0)');
    expect(tree['/etc/NetworkManager/system-connections/Wired connection 1.nmconnection']).toContain('interface-name=eth0\n');
    const withIfupdown = await op('networkmanager').apply(
      memoryFs({
        '/etc/NetworkManager/NetworkManager.conf': await debianFile('etc/NetworkManager/NetworkManager.conf'),
        '/etc/network/interfaces': 'auto eth0\niface eth0 inet static\n    address ADDRESS-TMPL\n',
      }),
      CONTEXT,
    );
    expect(withIfupdown.status).toBe('not-applicable');
    expect(withIfupdown.detail).toMatch(/ifupdown configures the NIC/);
  });
});

describe('SSH host keys on a sysvinit image', () => {
  it('hooks `ssh-keygen -A` into the real /etc/default/ssh that Debian\'s /etc/init.d/ssh sources before starting sshd', async () => {
    const initScript = await debianFile('etc/init.d/ssh');
    expect(initScript).toMatch(/^\s*\. \/etc\/default\/ssh$/m);
    const defaults = await debianFile('etc/default/ssh');
    const { first, tree } = await applyTwice('ssh-host-keys', {
      '/etc/init.d/ssh': { content: initScript, mode: 0o755 },
      '/etc/default/ssh': defaults,
      '/etc/ssh/ssh_host_ed25519_key': { content: 'x', mode: 0o600 },
      '/etc/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAA root@debian\n',
    });
    expect(first.detail).toBe('removed 2 host key file(s) from /etc/ssh; sysvinit: /etc/default/ssh runs `ssh-keygen -A` before sshd starts when keys are missing');
    expect(tree['/etc/default/ssh']).toBe(`file 644 0:0 ${defaults}${SYSV_KEYGEN_HOOK}`);
    expect(tree['/etc/ssh/ssh_host_ed25519_key']).toBeUndefined();
  });
});

describe('clean-up operations on the real Debian 12 /var layout', () => {
  async function usedSystem(): Promise<TreeSpec> {
    return {
      ...(await debianTree(['/var/log', '/var/cache/apt'])),
      '/var/log/journal/0123456789abcdef0123456789abcdef/system.journal': 'LPKSHHRH',
      '/var/log/apt/history.log': 'Start-Date: 2026-12-01\n',
      '/var/log/apt/eipp.log.xz': 'xz',
      '/var/log/dpkg.log': 'status installed\n',
      '/var/log/dpkg.log.1': 'older\n',
      '/var/log/wtmp': { content: new Uint8Array(384).fill(1), mode: 0o664, gid: 43 },
      '/var/cache/apt/pkgcache.bin': 'cache',
      '/var/cache/apt/srcpkgcache.bin': 'cache',
      '/var/cache/apt/archives/openssh-server_1%3a9.2p1-2+deb12u3_amd64.deb': 'deb',
      '/var/cache/apt/archives/partial/udev_252.deb': 'partial',
      '/var/lib/dhcp/dhclient.enp1s0.leases': 'lease {}\n',
      '/var/lib/NetworkManager/internal-1234-enp1s0.lease': 'ADDRESS=192.168.1.50\n',
      '/var/lib/NetworkManager/NetworkManager.state': '[main]\nNetworkingEnabled=true\n',
      '/var/lib/systemd/random-seed': { content: new Uint8Array(512), mode: 0o600 },
      '/var/lib/systemd/coredump/core.sshd.0.zst': 'core',
      '/tmp': { dir: true, mode: 0o1777 },
      '/tmp/.X11-unix': { dir: true, mode: 0o1777 },
      '/var/tmp/systemd-private-abc/tmp/x': 'x',
      '/root/.bash_history': 'ls\n',
      '/home/user/.bash_history': 'cd\n',
      '/home/user/.bashrc': '# kept\n',
      '/etc/network/interfaces~': 'old\n',
      '/var/backups/passwd.bak': 'root:x:0:0::/root:/bin/bash\n',
      '/etc/kept.conf': 'kept\n',
      '/var/mail/root': 'From root\n',
    };
  }

  it('each operation removes or empties only its files and is idempotent', async () => {
    const expectations: Record<string, { gone?: string[]; empty?: string[]; kept?: string[] }> = {
      logfiles: { gone: ['/var/log/dpkg.log.1', '/var/log/apt/eipp.log.xz', '/var/log/journal/0123456789abcdef0123456789abcdef'], empty: ['/var/log/dpkg.log', '/var/log/apt/history.log'], kept: ['/var/log/README', '/var/log/journal', '/var/log/private'] },
      'bash-history': { gone: ['/root/.bash_history', '/home/user/.bash_history'], kept: ['/home/user/.bashrc'] },
      'tmp-files': { gone: ['/tmp/.X11-unix', '/var/tmp/systemd-private-abc'], kept: ['/tmp', '/var/tmp'] },
      'package-manager-cache': { gone: ['/var/cache/apt/pkgcache.bin', '/var/cache/apt/srcpkgcache.bin', '/var/cache/apt/archives/openssh-server_1%3a9.2p1-2+deb12u3_amd64.deb', '/var/cache/apt/archives/partial/udev_252.deb'], kept: ['/var/cache/apt/archives/lock', '/var/cache/apt/archives/partial'] },
      'dhcp-client-state': { gone: ['/var/lib/dhcp/dhclient.enp1s0.leases', '/var/lib/NetworkManager/internal-1234-enp1s0.lease'], kept: ['/var/lib/NetworkManager/NetworkManager.state'] },
      'random-seed': { gone: ['/var/lib/systemd/random-seed'] },
      utmp: { empty: ['/var/log/wtmp'] },
      'crash-data': { gone: ['/var/lib/systemd/coredump/core.sshd.0.zst'], kept: ['/var/lib/systemd/coredump'] },
      'backup-files': { gone: ['/etc/network/interfaces~', '/var/backups/passwd.bak'], kept: ['/etc/kept.conf'] },
      'mail-spool': { gone: ['/var/mail/root'], kept: ['/var/mail'] },
    };
    for (const [name, expected] of Object.entries(expectations)) {
      const spec = await usedSystem();
      const before = memoryFs(spec).snapshot();
      const { first, tree } = await applyTwice(name, spec);
      expect(first.status, name).toBe('applied');
      for (const path of expected.gone ?? []) expect(tree[path], `${name}: ${path}`).toBeUndefined();
      for (const path of expected.kept ?? []) expect(tree[path], `${name}: ${path}`).toBe(before[path]);
      for (const path of expected.empty ?? []) expect(tree[path], `${name}: ${path}`).toBe(before[path]!.replace(/^(file \d+ \d+:\d+ )[\s\S]*$/, '$1'));
      // Nothing outside the listed paths changed.
      const touched = [...(expected.gone ?? []), ...(expected.empty ?? [])];
      for (const path of Object.keys(before)) {
        if (!touched.some((t) => path === t || path.startsWith(`${t}/`))) expect(tree[path], `${name} changed ${path}`).toBe(before[path]);
      }
    }
  });

  it('finds nothing to do on the freshly installed real layout (empty logs, no caches)', async () => {
    const fs = memoryFs(await debianTree(['/var/log', '/var/cache/apt']));
    for (const name of ['logfiles', 'package-manager-cache', 'utmp']) {
      expect((await op(name).apply(fs, CONTEXT)).status, name).toBe('not-applicable');
    }
  });
});
