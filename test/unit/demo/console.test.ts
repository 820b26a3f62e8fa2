import { describe, expect, it } from 'vitest';
import { parseGuestConsole, verifyGuestIdentity } from '../../../src/demo/console.js';

const goodLog = [
  '[    1.889020] EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.\r',
  'DISKWRIGHT-INITRAMFS: mounted /dev/vda (ro), starting /sbin/init\r',
  'DISKWRIGHT-BOOT: root filesystem is up (6.1.0-56-amd64)\r',
  'DISKWRIGHT-HOSTNAME: web01.linux.bogus\r',
  'DISKWRIGHT-INTERFACES-ADDRESS: address 10.0.2.15\r',
  'DISKWRIGHT-RESOLV: nameserver 10.0.2.3\r',
  'DISKWRIGHT-IP: 2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel qlen 1000\r',
  'DISKWRIGHT-IP:     inet 10.0.2.15/24 scope global eth0\r',
  'DISKWRIGHT-DONE\r',
  '[    2.175054] reboot: Power down\r',
].join('\n');

describe('parseGuestConsole', () => {
  it('reads the hostname, the interfaces address, the nameserver and eth0 addresses from marker lines', () => {
    const report = parseGuestConsole(goodLog);
    expect(report).toMatchObject({
      booted: true,
      done: true,
      hostname: 'web01.linux.bogus',
      interfacesAddress: '10.0.2.15',
      nameserver: '10.0.2.3',
      eth0Addresses: ['10.0.2.15/24'],
      eth0Flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      errors: [],
    });
    expect(report.lines[0]).toBe('DISKWRIGHT-INITRAMFS: mounted /dev/vda (ro), starting /sbin/init');
  });

  it('finds a marker even when a kernel message was printed on the same line before it', () => {
    expect(parseGuestConsole('[ 2.0] random: crng initDISKWRIGHT-HOSTNAME: db1\n').hostname).toBe('db1');
  });

  it('collects initramfs errors', () => {
    expect(parseGuestConsole('DISKWRIGHT-INITRAMFS-ERROR: /dev/vda did not appear\n').errors).toEqual(['/dev/vda did not appear']);
  });
});

describe('verifyGuestIdentity', () => {
  const expected = { hostnames: ['web01', 'web01.linux.bogus'], address: '10.0.2.15', prefix: 24 };

  it('accepts a guest that shows the expected hostname and eth0 address', () => {
    expect(() => verifyGuestIdentity(parseGuestConsole(goodLog), expected)).not.toThrow();
  });

  it('rejects a guest whose hostname was left as the template placeholder', () => {
    const log = goodLog.replace('web01.linux.bogus', 'HOSTNAME-TMPL');
    expect(() => verifyGuestIdentity(parseGuestConsole(log), expected)).toThrow(/hostname is `HOSTNAME-TMPL`/);
  });

  it('rejects a guest whose eth0 came up with another address or prefix', () => {
    expect(() => verifyGuestIdentity(parseGuestConsole(goodLog.replace('inet 10.0.2.15/24', 'inet 10.0.2.16/24')), expected)).toThrow(/eth0 has 10\.0\.2\.16\/24, expected 10\.0\.2\.15\/24/);
    expect(() => verifyGuestIdentity(parseGuestConsole(goodLog.replace('/24 scope', '/16 scope')), expected)).toThrow(/expected 10\.0\.2\.15\/24/);
  });

  it('rejects a guest whose eth0 holds the address but is down', () => {
    const down = goodLog.replace('<BROADCAST,MULTICAST,UP,LOWER_UP>', '<BROADCAST,MULTICAST>');
    expect(() => verifyGuestIdentity(parseGuestConsole(down), expected)).toThrow(/eth0 is not up \(flags BROADCAST,MULTICAST\)/);
  });

  it('rejects a guest without eth0 address, one that never booted and one that stopped early', () => {
    const noIp = goodLog.split('\n').filter((l) => !l.includes('inet ')).join('\n');
    expect(() => verifyGuestIdentity(parseGuestConsole(noIp), expected)).toThrow(/no IPv4 address/);
    expect(() => verifyGuestIdentity(parseGuestConsole('[ 0.1] Linux version 6.1\n'), expected)).toThrow(/never ran/);
    expect(() => verifyGuestIdentity(parseGuestConsole(goodLog.replace('DISKWRIGHT-DONE', '')), expected)).toThrow(/did not finish/);
  });
});
