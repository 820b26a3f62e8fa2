import { describe, expect, it } from 'vitest';
import { applyTemplateOperations } from '../../../src/template/apply.js';
import { TEMPLATE_OPERATIONS, selectOperations, templateOperations } from '../../../src/template/operations/index.js';
import type { TemplateOperation } from '../../../src/template/operations/types.js';
import { NETPLAN_CONFIG } from '../../../src/template/operations/netplan.js';
import { SSH_KEYGEN_UNIT_TEXT } from '../../../src/template/operations/systemd.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { memoryFs, type TreeSpec } from '../../helpers/memory-fs.js';

function op(name: string): TemplateOperation {
  const found = TEMPLATE_OPERATIONS.find((o) => o.name === name);
  if (!found) throw new Error(`no operation ${name}`);
  return found;
}

/** Applies an operation twice: the second run must report not-applicable and change nothing. */
async function applyTwice(name: string, spec: TreeSpec) {
  const fs = memoryFs(spec);
  const first = await op(name).apply(fs);
  const after = fs.snapshot();
  fs.mutations = 0;
  const second = await op(name).apply(fs);
  expect(second.status).toBe('not-applicable');
  expect(fs.mutations).toBe(0);
  expect(fs.snapshot()).toEqual(after);
  return { fs, first, second, tree: after };
}

const DEBIAN_INTERFACES = [
  '# This file describes the network interfaces available on your system',
  '',
  'source /etc/network/interfaces.d/*',
  '',
  '# The loopback network interface',
  'auto lo',
  'iface lo inet loopback',
  '',
  '# The primary network interface',
  'allow-hotplug eth0',
  'iface eth0 inet dhcp',
  '',
].join('\n');

describe('template operations', () => {
  it('lists every operation with a name and a description, names unique', () => {
    const names = templateOperations.map((o) => o.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['udev-persistent-net', 'hostname', 'resolv-conf', 'network-interfaces', 'inittab-serial', 'machine-id', 'ssh-host-keys', 'hosts', 'serial-getty', 'netplan', 'networkmanager', 'cloud-init']));
    for (const o of templateOperations) expect(o.description.length).toBeGreaterThan(10);
  });

  it('empties the persistent-net udev rules and says not-applicable when absent', async () => {
    const { first, tree } = await applyTwice('udev-persistent-net', { '/etc/udev/rules.d/70-persistent-net.rules': 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\n' });
    expect(first.status).toBe('applied');
    expect(tree['/etc/udev/rules.d/70-persistent-net.rules']).toBe('file 644 0:0 ');
    expect((await op('udev-persistent-net').apply(memoryFs({ '/etc/passwd': '' }))).status).toBe('not-applicable');
  });

  it('writes HOSTNAME-TMPL to /etc/hostname keeping its mode, or creates it', async () => {
    const { first, tree } = await applyTwice('hostname', { '/etc/hostname': { content: 'debian\n', mode: 0o600 } });
    expect(first).toMatchObject({ status: 'applied', files: [{ path: '/etc/hostname', text: 'HOSTNAME-TMPL\n' }] });
    expect(tree['/etc/hostname']).toBe('file 600 0:0 HOSTNAME-TMPL\n');
    const created = await applyTwice('hostname', { '/etc': { dir: true } });
    expect(created.tree['/etc/hostname']).toBe('file 644 0:0 HOSTNAME-TMPL\n');
    expect((await op('hostname').apply(memoryFs({}))).status).toBe('not-applicable');
  });

  it('writes the nameserver placeholder and replaces a systemd-resolved symlink by a file', async () => {
    const plain = await applyTwice('resolv-conf', { '/etc/resolv.conf': 'domain example\nnameserver 10.0.0.1\n' });
    expect(plain.tree['/etc/resolv.conf']).toBe('file 644 0:0 nameserver NAMESERVER-TMPL\n');
    const linked = await applyTwice('resolv-conf', {
      '/etc/resolv.conf': { symlink: '../run/systemd/resolve/stub-resolv.conf' },
      '/run/systemd/resolve/stub-resolv.conf': 'nameserver 127.0.0.53\n',
    });
    expect(linked.first.detail).toMatch(/symlink to \.\.\/run\/systemd\/resolve\/stub-resolv\.conf/);
    expect(linked.tree['/etc/resolv.conf']).toBe('file 644 0:0 nameserver NAMESERVER-TMPL\n');
    expect(linked.tree['/run/systemd/resolve/stub-resolv.conf']).toBe('file 644 0:0 nameserver 127.0.0.53\n');
  });

  it('replaces the dhcp eth0 stanza in /etc/network/interfaces, keeping lo and the rest', async () => {
    const { first, tree } = await applyTwice('network-interfaces', {
      '/etc/network/interfaces': DEBIAN_INTERFACES,
      '/etc/network/interfaces.d/eth0': 'auto eth0\niface eth0 inet dhcp\n',
      '/etc/network/interfaces.d/eth1': 'auto eth1\niface eth1 inet dhcp\n',
    });
    expect(first.status).toBe('applied');
    expect(tree['/etc/network/interfaces']).toBe(
      'file 644 0:0 ' +
        [
          '# This file describes the network interfaces available on your system',
          '',
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
          '',
        ].join('\n'),
    );
    expect(tree['/etc/network/interfaces.d/eth0']).toBe('file 644 0:0 ');
    expect(tree['/etc/network/interfaces.d/eth1']).toBe('file 644 0:0 auto eth1\niface eth1 inet dhcp\n');
  });

  it('says not-applicable for network-interfaces when ifupdown is not installed', async () => {
    expect((await op('network-interfaces').apply(memoryFs({ '/etc/hostname': 'x' }))).status).toBe('not-applicable');
  });

  it('uncomments the serial T0 line in inittab, adds it when missing, skips images without inittab', async () => {
    const commented = await applyTwice('inittab-serial', {
      '/etc/inittab': 'id:2:initdefault:\n1:2345:respawn:/sbin/getty 38400 tty1\n#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n#T1:23:respawn:/sbin/getty -L ttyS1 9600 vt100\n',
    });
    expect(commented.tree['/etc/inittab']).toBe(
      'file 644 0:0 id:2:initdefault:\n1:2345:respawn:/sbin/getty 38400 tty1\nT0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n#T1:23:respawn:/sbin/getty -L ttyS1 9600 vt100\n',
    );
    const missing = await applyTwice('inittab-serial', { '/etc/inittab': 'id:2:initdefault:\n' });
    expect(missing.tree['/etc/inittab']).toBe('file 644 0:0 id:2:initdefault:\nT0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n');
    const active = memoryFs({ '/etc/inittab': 'S0:2345:respawn:/sbin/agetty -L 115200 ttyS0 vt102\n' });
    expect((await op('inittab-serial').apply(active)).status).toBe('not-applicable');
    expect((await op('inittab-serial').apply(memoryFs({ '/etc/hostname': 'x' }))).status).toBe('not-applicable');
  });

  it('sets one 127.0.1.1 HOSTNAME-TMPL SHORTNAME-TMPL line (FQDN and short name) in /etc/hosts, replacing the old one', async () => {
    const { tree } = await applyTwice('hosts', {
      '/etc/hosts': '127.0.0.1\tlocalhost\n127.0.1.1\tdebian.example debian\n\n::1 localhost ip6-localhost\n',
    });
    expect(tree['/etc/hosts']).toBe('file 644 0:0 127.0.0.1\tlocalhost\n127.0.1.1\tHOSTNAME-TMPL SHORTNAME-TMPL\n\n::1 localhost ip6-localhost\n');
    const added = await applyTwice('hosts', { '/etc/hosts': '# static\n127.0.0.1 localhost\n10.0.0.5 db\n' });
    expect(added.tree['/etc/hosts']).toBe('file 644 0:0 # static\n127.0.0.1 localhost\n127.0.1.1\tHOSTNAME-TMPL SHORTNAME-TMPL\n10.0.0.5 db\n');
  });

  it('empties /etc/machine-id, removes a regular D-Bus copy and keeps a D-Bus symlink', async () => {
    const copy = await applyTwice('machine-id', {
      '/etc/machine-id': { content: '0123456789abcdef0123456789abcdef\n', mode: 0o444 },
      '/var/lib/dbus/machine-id': '0123456789abcdef0123456789abcdef\n',
    });
    expect(copy.first.status).toBe('applied');
    expect(copy.tree['/etc/machine-id']).toBe('file 444 0:0 ');
    expect(copy.tree['/var/lib/dbus/machine-id']).toBeUndefined();
    const link = await applyTwice('machine-id', {
      '/etc/machine-id': '0123456789abcdef0123456789abcdef\n',
      '/var/lib/dbus/machine-id': { symlink: '/etc/machine-id' },
    });
    expect(link.tree['/var/lib/dbus/machine-id']).toBe('-> /etc/machine-id');
    expect(link.tree['/etc/machine-id']).toBe('file 644 0:0 ');
  });

  it('removes SSH host keys only, and adds a first-boot keygen unit when systemd runs sshd', async () => {
    const { first, tree } = await applyTwice('ssh-host-keys', {
      '/etc/ssh/ssh_host_ed25519_key': { content: 'PRIVATE', mode: 0o600 },
      '/etc/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAA',
      '/etc/ssh/ssh_host_rsa_key': 'PRIVATE',
      '/etc/ssh/sshd_config': 'PermitRootLogin no\n',
      '/lib/systemd/system/ssh.service': '[Unit]\n',
    });
    expect(first.detail).toMatch(/removed 3 host key/);
    expect(Object.keys(tree).filter((p) => p.includes('ssh_host_'))).toEqual([]);
    expect(tree['/etc/ssh/sshd_config']).toBe('file 644 0:0 PermitRootLogin no\n');
    expect(tree['/etc/systemd/system/diskwright-ssh-host-keys.service']).toBe(`file 644 0:0 ${SSH_KEYGEN_UNIT_TEXT}`);
    expect(tree['/etc/systemd/system/multi-user.target.wants/diskwright-ssh-host-keys.service']).toBe(
      '-> /etc/systemd/system/diskwright-ssh-host-keys.service',
    );
    const sysv = await op('ssh-host-keys').apply(memoryFs({ '/etc/ssh/ssh_host_rsa_key': 'K' }));
    expect(sysv.detail).toMatch(/ssh-keygen -A/);
    expect((await op('ssh-host-keys').apply(memoryFs({ '/etc/hostname': 'x' }))).status).toBe('not-applicable');
  });

  it('enables serial-getty@ttyS0 on systemd images (merged /usr too) and not elsewhere', async () => {
    const { tree } = await applyTwice('serial-getty', { '/lib/systemd/system/serial-getty@.service': '[Unit]\n' });
    expect(tree['/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service']).toBe('-> /lib/systemd/system/serial-getty@.service');
    const merged = await applyTwice('serial-getty', { '/lib': { symlink: 'usr/lib' }, '/usr/lib/systemd/system/serial-getty@.service': '[Unit]\n' });
    expect(merged.tree['/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service']).toBe('-> /lib/systemd/system/serial-getty@.service');
    expect((await op('serial-getty').apply(memoryFs({ '/etc/inittab': 'x' }))).status).toBe('not-applicable');
  });

  it('moves netplan configurations aside and writes the static eth0 one', async () => {
    const { first, tree } = await applyTwice('netplan', {
      '/etc/netplan/50-cloud-init.yaml': 'network:\n  ethernets:\n    eth0:\n      dhcp4: true\n',
      '/etc/netplan/README': 'keep me',
    });
    expect(first.detail).toMatch(/50-cloud-init\.yaml → 50-cloud-init\.yaml\.diskwright-orig/);
    expect(tree['/etc/netplan/01-diskwright-eth0.yaml']).toBe(`file 600 0:0 ${NETPLAN_CONFIG}`);
    expect(tree['/etc/netplan/50-cloud-init.yaml.diskwright-orig']).toContain('dhcp4: true');
    expect(tree['/etc/netplan/README']).toBe('file 644 0:0 keep me');
    expect((await op('netplan').apply(memoryFs({ '/etc/netplan': { dir: true } }))).status).toBe('not-applicable');
    expect((await op('netplan').apply(memoryFs({}))).status).toBe('not-applicable');
  });

  it('makes wired NetworkManager keyfiles static on eth0 and leaves Wi-Fi ones alone', async () => {
    const wired = ['[connection]', 'id=Wired connection 1', 'uuid=1234', 'type=ethernet', '', '[ethernet]', 'mac-address=52:54:00:12:34:56', '', '[ipv4]', 'method=auto', 'may-fail=false', '', '[ipv6]', 'method=auto', ''].join('\n');
    const wifi = '[connection]\nid=home\ntype=wifi\n\n[ipv4]\nmethod=auto\n';
    const { tree } = await applyTwice('networkmanager', {
      '/etc/NetworkManager/system-connections/wired.nmconnection': { content: wired, mode: 0o600 },
      '/etc/NetworkManager/system-connections/home.nmconnection': { content: wifi, mode: 0o600 },
    });
    expect(tree['/etc/NetworkManager/system-connections/wired.nmconnection']).toBe(
      'file 600 0:0 ' +
        ['[connection]', 'interface-name=eth0', 'id=Wired connection 1', 'uuid=1234', 'type=ethernet', '', '[ethernet]', '', '[ipv4]', 'method=manual', 'address1=ADDRESS-TMPL/PREFIX-TMPL,GATEWAY-TMPL', 'dns=NAMESERVER-TMPL;', 'may-fail=false', '', '[ipv6]', 'method=auto', ''].join('\n'),
    );
    expect(tree['/etc/NetworkManager/system-connections/home.nmconnection']).toBe(`file 600 0:0 ${wifi}`);
    expect((await op('networkmanager').apply(memoryFs({}))).status).toBe('not-applicable');
  });

  it('disables cloud-init when it is installed', async () => {
    const { tree } = await applyTwice('cloud-init', { '/etc/cloud/cloud.cfg': 'users: []\n' });
    expect(tree['/etc/cloud/cloud-init.disabled']).toBe('file 644 0:0 ');
    expect(tree['/etc/cloud/cloud.cfg']).toBe('file 644 0:0 users: []\n');
    expect((await op('cloud-init').apply(memoryFs({ '/etc/hostname': 'x' }))).status).toBe('not-applicable');
  });

  it('selects operations with ops and skip and rejects unknown names', () => {
    const selected = selectOperations(['hostname', 'hosts'], ['hosts']).filter((s) => s.selected).map((s) => s.operation.name);
    expect(selected).toEqual(['hostname']);
    expect(selectOperations(undefined, ['netplan']).filter((s) => !s.selected).map((s) => s.operation.name)).toEqual(['netplan']);
    let caught: unknown;
    try {
      selectOperations(['hostnme']);
    } catch (error) {
      caught = error;
    }
    expect(isDiskwrightError(caught, 'E_INVALID_ARGUMENT')).toBe(true);
    expect((caught as Error).message).toContain('hostnme');
  });

  it('applies the selection, reports skipped ones and lists the files carrying placeholders', async () => {
    const fs = memoryFs({ '/etc/hostname': 'debian\n', '/etc/resolv.conf': 'nameserver 1.1.1.1\n', '/etc/network/interfaces': DEBIAN_INTERFACES });
    const result = await applyTemplateOperations(fs, { skip: ['resolv-conf'] });
    expect(result.operations.find((o) => o.name === 'resolv-conf')).toEqual({ name: 'resolv-conf', status: 'skipped' });
    expect(result.operations.find((o) => o.name === 'hostname')?.status).toBe('applied');
    expect(result.files).toEqual([
      { path: '/etc/hostname', placeholders: ['HOSTNAME-TMPL'] },
      { path: '/etc/network/interfaces', placeholders: ['ADDRESS-TMPL', 'NETMASK-TMPL', 'GATEWAY-TMPL'] },
    ]);
    expect(fs.snapshot()['/etc/resolv.conf']).toBe('file 644 0:0 nameserver 1.1.1.1\n');
    const again = await applyTemplateOperations(fs, { skip: ['resolv-conf'] });
    expect(again.operations.filter((o) => o.status === 'applied')).toEqual([]);
    expect(again.files).toEqual(result.files);
  });
});
