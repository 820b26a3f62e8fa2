import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { applyTemplateOperations } from '../../src/template/apply.js';
import { memoryFs, type TreeSpec } from '../helpers/memory-fs.js';

/** Paths the operations own (may change); everything else must stay byte for byte. */
function owned(path: string): boolean {
  return (
    [
      '/etc/udev/rules.d/70-persistent-net.rules',
      '/etc/hostname',
      '/etc/resolv.conf',
      '/etc/network/interfaces',
      '/etc/inittab',
      '/etc/hosts',
      '/etc/machine-id',
      '/var/lib/dbus/machine-id',
      '/etc/systemd',
      '/etc/systemd/system',
      '/etc/systemd/system/getty.target.wants',
      '/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service',
      '/etc/systemd/system/diskwright-ssh-host-keys.service',
      '/etc/systemd/system/multi-user.target.wants',
      '/etc/systemd/system/multi-user.target.wants/diskwright-ssh-host-keys.service',
      '/etc/cloud/cloud-init.disabled',
      '/etc/NetworkManager/system-connections',
    ].includes(path) ||
    /\.bak$/.test(path) ||
    /^\/etc\/ssh\/ssh_host_[^/]+$/.test(path) ||
    /^\/etc\/netplan\/[^/]+$/.test(path) ||
    /^\/etc\/network\/interfaces\.d\/[^/]+$/.test(path) ||
    /^\/etc\/NetworkManager\/system-connections\/[^/]+\.nmconnection$/.test(path)
  );
}

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const text = fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\n', '#', '=', '1', '.', ':'), maxLength: 30 });
const known = fc.record({
  '/etc/hostname': optional(text),
  '/etc/hosts': optional(fc.constantFrom('127.0.0.1 localhost\n127.0.1.1 old\n', '127.0.0.1 localhost\n', '')),
  '/etc/resolv.conf': optional(text),
  '/etc/network/interfaces': optional(fc.constantFrom('auto lo\niface lo inet loopback\nallow-hotplug eth0\niface eth0 inet dhcp\n', 'auto lo eth1\niface eth1 inet dhcp\n', '')),
  '/etc/network/interfaces.d/x': optional(fc.constantFrom('iface eth0 inet dhcp\n', 'iface eth2 inet manual\n')),
  '/etc/inittab': optional(fc.constantFrom('id:2:initdefault:\n#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n', 'id:2:initdefault:\n')),
  '/etc/machine-id': optional(fc.constantFrom('abc\n', '')),
  '/etc/ssh/ssh_host_rsa_key': optional(text),
  '/etc/ssh/sshd_config': optional(text),
  '/etc/udev/rules.d/70-persistent-net.rules': optional(text),
  '/etc/udev/rules.d/99-local.rules': optional(text),
  '/lib/systemd/system/serial-getty@.service': optional(fc.constant('[Unit]\n')),
  '/lib/systemd/system/ssh.service': optional(fc.constant('[Unit]\n')),
  '/etc/netplan/50-cloud-init.yaml': optional(text),
  '/etc/NetworkManager/system-connections/w.nmconnection': optional(fc.constantFrom('[connection]\ntype=ethernet\n', '[connection]\ntype=wifi\n')),
  '/etc/NetworkManager/NetworkManager.conf': optional(text),
  '/etc/cloud/cloud.cfg': optional(text),
});
const extraPath = fc
  .tuple(fc.constantFrom('/etc', '/etc/network', '/home/user', '/var/lib', '/etc/ssh', '/root'), fc.stringMatching(/^[a-z][a-z0-9._-]{0,8}$/))
  .map(([dir, name]) => `${dir}/${name}`);
const extras = fc.dictionary(extraPath, text, { maxKeys: 8 });

test.prop([known, extras])('templating changes only the files the operations own, and a second run changes nothing', async (files, extra) => {
  const spec: TreeSpec = {};
  for (const [path, content] of Object.entries(extra)) if (!owned(path)) spec[path] = content;
  for (const [path, content] of Object.entries(files)) if (content !== undefined) spec[path] = content;
  const fs = memoryFs(spec);
  const before = fs.snapshot();
  await applyTemplateOperations(fs);
  const after = fs.snapshot();
  for (const path of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (before[path] !== after[path]) expect(owned(path), `${path} changed`).toBe(true);
  }
  fs.mutations = 0;
  const again = await applyTemplateOperations(fs);
  expect(again.operations.filter((op) => op.status === 'applied')).toEqual([]);
  expect(fs.mutations).toBe(0);
  expect(fs.snapshot()).toEqual(after);
});
