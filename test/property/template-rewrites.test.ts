import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { findPrimaryInterface, rewriteInterfaces } from '../../src/template/operations/interfaces.js';
import { rewriteInittab } from '../../src/template/operations/inittab.js';
import { rewriteHosts } from '../../src/template/operations/hosts.js';
import { rewriteNmConnection } from '../../src/template/operations/networkmanager.js';

const ifaceName = fc.constantFrom('lo', 'eth0', 'eth1', 'br0', 'eth0:1');
const interfacesLine = fc.oneof(
  fc.tuple(fc.constantFrom('auto', 'allow-hotplug'), fc.array(ifaceName, { minLength: 1, maxLength: 3 })).map(([k, names]) => `${k} ${names.join(' ')}`),
  fc.tuple(ifaceName, fc.constantFrom('inet', 'inet6'), fc.constantFrom('dhcp', 'static', 'loopback', 'manual')).map(([n, f, m]) => `iface ${n} ${f} ${m}`),
  fc.constantFrom('    address 10.0.0.2', '  netmask 255.0.0.0', 'bridge_ports eth0', '# comment', '', 'source /etc/network/interfaces.d/*', 'mapping eth0', '  script /x'),
);
const interfacesText = fc.array(interfacesLine, { maxLength: 25 }).map((lines) => (lines.length ? `${lines.join('\n')}\n` : ''));

test.prop([interfacesText])('interfaces: rewriting twice equals rewriting once', (text) => {
  const once = rewriteInterfaces(text);
  expect(rewriteInterfaces(once)).toBe(once);
});

test.prop([interfacesText])('interfaces: exactly one IPv4 eth0 stanza, the static placeholder one, and auto eth0', (text) => {
  const lines = rewriteInterfaces(text).split('\n');
  expect(lines.filter((l) => /^\s*iface eth0 inet /.test(l))).toEqual(['iface eth0 inet static']);
  expect(lines).toContain('auto eth0');
  expect(lines).toContain('    address ADDRESS-TMPL');
});

test.prop([interfacesText])('interfaces: every line not about IPv4 eth0 or the primary interface is kept, in order', (text) => {
  const out = rewriteInterfaces(text).split('\n');
  // The primary (first non-loopback `iface NAME inet`, e.g. the installer's enp1s0) becomes eth0.
  const primary = findPrimaryInterface(text);
  const keptIn = text
    .split('\n')
    .filter((l) => /^iface (lo|eth1|br0|eth0:1) |^iface eth0 inet6 |^source |^mapping |^# comment/.test(l))
    .filter((l) => primary === undefined || !l.startsWith(`iface ${primary} `));
  let at = 0;
  for (const line of keptIn) {
    const found = out.indexOf(line, at);
    expect(found).toBeGreaterThanOrEqual(at);
    at = found + 1;
  }
});

const inittabLine = fc.constantFrom(
  'id:2:initdefault:',
  '1:2345:respawn:/sbin/getty 38400 tty1',
  '#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100',
  '#T1:23:respawn:/sbin/getty -L ttyS1 9600 vt100',
  'T0:2345:respawn:/sbin/foo',
  '# comment',
  '',
);
test.prop([fc.array(inittabLine, { maxLength: 10 })])('inittab: idempotent, one active ttyS0 getty, other active lines kept', (lines) => {
  const text = lines.length ? `${lines.join('\n')}\n` : '';
  const once = rewriteInittab(text);
  expect(rewriteInittab(once)).toBe(once);
  const active = once.split('\n').filter((l) => !l.startsWith('#') && l.includes('ttyS0'));
  expect(active.length).toBeGreaterThanOrEqual(1);
  for (const line of lines.filter((l) => l !== '' && !l.startsWith('#'))) expect(once.split('\n')).toContain(line);
});

const hostsLine = fc.constantFrom('127.0.0.1\tlocalhost', '127.0.1.1 old.example old', '::1 localhost', '# c', '', '10.0.0.1 db', ' 127.0.1.1 x');
test.prop([fc.array(hostsLine, { maxLength: 10 })])('hosts: idempotent with exactly one 127.0.1.1 line', (lines) => {
  const text = lines.length ? `${lines.join('\n')}\n` : '';
  const once = rewriteHosts(text);
  expect(rewriteHosts(once)).toBe(once);
  expect(once.split('\n').filter((l) => l.trim().startsWith('127.0.1.1'))).toEqual(['127.0.1.1\tHOSTNAME-TMPL SHORTNAME-TMPL']);
});

const nmLine = fc.constantFrom('[connection]', '[ethernet]', '[ipv4]', '[ipv6]', 'type=ethernet', 'id=x', 'mac-address=aa', 'method=auto', 'address1=10.0.0.2/8', 'dns=1.1.1.1;', 'may-fail=false', '', '# c');
test.prop([fc.array(nmLine, { maxLength: 15 })])('NetworkManager keyfile: rewriting twice equals rewriting once', (lines) => {
  const once = rewriteNmConnection(lines.length ? `${lines.join('\n')}\n` : '');
  expect(rewriteNmConnection(once)).toBe(once);
  expect(once).toContain('address1=ADDRESS-TMPL/PREFIX-TMPL,GATEWAY-TMPL');
});
