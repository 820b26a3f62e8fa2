import { describe, expect, it } from 'vitest';
import { buildKernelArgs, validateInstanceRequest, type InstanceRequest } from '../../../src/instance/index.js';

const base: InstanceRequest = { ip: '192.168.1.197', host: 'jgoulah' };

function rejects(request: InstanceRequest, pattern: RegExp): void {
  expect(() => validateInstanceRequest({ ...base, ...request }, { cwd: '/srv' })).toThrow(pattern);
}

describe('validateInstanceRequest', () => {
  it('fills in the article\'s defaults (netmask typo corrected)', () => {
    const spec = validateInstanceRequest(base, { cwd: '/srv' });
    expect(spec).toMatchObject({
      host: 'jgoulah',
      fqdn: 'jgoulah.linux.bogus',
      ip: '192.168.1.197',
      netmask: '255.255.255.0',
      prefix: 24,
      gateway: '192.168.1.1',
      nameserver: '192.168.1.101',
      diskBytes: 10 * 1024 ** 3,
      ramMiB: 512,
      vcpus: 1,
      network: { kind: 'bridge', name: 'br0' },
      imagesDir: '/var/lib/libvirt/images',
      template: '/var/lib/libvirt/images/debian-tmpl',
      diskPath: '/var/lib/libvirt/images/jgoulah-disk0',
      cpu: 'host',
      graphics: 'vnc',
      extraKernelArgs: [],
    });
  });

  it('rejects the article\'s own netmask with the reason', () => {
    rejects({ netmask: '255.255.225.0' }, /not contiguous: bits after the first 0 must be 0 \(did you mean 255\.255\.255\.0\?\)/);
  });

  it('rejects a gateway outside the subnet, the network and the broadcast address', () => {
    rejects({ gateway: '10.0.0.1' }, /outside the instance's subnet 192\.168\.1\.0\/24/);
    rejects({ gateway: '192.168.1.0' }, /network address/);
    rejects({ gateway: '192.168.1.255' }, /broadcast address/);
    rejects({ gateway: '192.168.1.197' }, /own address/);
  });

  it('defaults the gateway to the first host of the subnet of --ip/--netmask', () => {
    expect(validateInstanceRequest(base).gateway).toBe('192.168.1.1');
    expect(validateInstanceRequest({ ...base, ip: '10.0.0.5' }).gateway).toBe('10.0.0.1');
    expect(validateInstanceRequest({ ...base, ip: '172.16.9.20', netmask: '255.255.240.0' }).gateway).toBe('172.16.0.1');
    expect(validateInstanceRequest({ ...base, ip: '10.1.2.6', netmask: '255.255.255.252' }).gateway).toBe('10.1.2.5');
    expect(buildKernelArgs(validateInstanceRequest({ ...base, ip: '10.0.0.5' }))).toContain('_gateway=10.0.0.1');
  });

  it('rejects the derived gateway when it is the instance\'s own address, saying it was derived', () => {
    rejects({ ip: '10.0.0.1' }, /the default gateway 10\.0\.0\.1 \(the first host of 10\.0\.0\.0\/24; no --gateway given\) is the instance's own address/);
  });

  it('accepts a gateway inside a wider subnet', () => {
    expect(validateInstanceRequest({ ...base, netmask: '255.255.240.0', gateway: '192.168.0.1' }).gateway).toBe('192.168.0.1');
  });

  it('rejects an IP that is the network or broadcast address, loopback or multicast', () => {
    rejects({ ip: '192.168.1.0' }, /network address of 192\.168\.1\.0\/24/);
    rejects({ ip: '192.168.1.255' }, /broadcast address/);
    rejects({ ip: '127.0.0.5', gateway: '127.0.0.1' }, /loopback/);
    rejects({ ip: '224.0.0.5' }, /multicast/);
  });

  it('rejects nameservers that make no sense', () => {
    rejects({ nameserver: '0.0.0.0' }, /this network/);
    rejects({ nameserver: '255.255.255.255' }, /reserved or broadcast/);
    rejects({ nameserver: '192.168.1.197' }, /own address/);
    expect(validateInstanceRequest({ ...base, nameserver: '9.9.9.9' }).nameserver).toBe('9.9.9.9');
  });

  it('rejects prefixes that leave no host room', () => {
    rejects({ netmask: '255.255.255.254', gateway: '192.168.1.196' }, /\/31/);
    rejects({ netmask: '0.0.0.0' }, /\/0/);
  });

  it('validates sizes and counts', () => {
    expect(validateInstanceRequest({ ...base, disk: '20G', ram: '2048', cpus: 4 })).toMatchObject({ diskBytes: 20 * 1024 ** 3, ramMiB: 2048, vcpus: 4 });
    rejects({ disk: 'ten' }, /`disk`/);
    rejects({ disk: '1000' }, /multiple of 512/);
    rejects({ ram: '0' }, /`ram`/);
    rejects({ ram: '512M' }, /`ram`/);
    rejects({ cpus: '-1' }, /`cpus`/);
    rejects({ cpus: '1.5' }, /`cpus`/);
  });

  it.each([
    ['host', 'a;rm -rf /'],
    ['host', '--foo'],
    ['host', 'x,bus=ide'],
    ['domain', 'linux.bogus kernel'],
    ['bridge', 'br0,model=e1000'],
    ['bridge', '--foo'],
    ['imagesDir', '/var/lib/my images'],
    ['imagesDir', '/var/lib/a,bus=ide'],
    ['template', '/tmp/tmpl"x'],
    ['kernel', '/boot/vmlinuz,initrd=/evil'],
    ['connect', 'qemu:///system,x'],
    ['connect', '--help'],
    ['os', 'debian12,require=on'],
    ['virtType', 'kvm --x'],
    ['kernelArgs', 'init=/bin/sh"'],
    ['kernelArgs', 'a,b'],
    ['network', 'bridge=br0,mac=00:11:22:33:44:55'],
    ['mac', '52:54:00:aa:bb:cc,model=e1000'],
    ['serialLog', '/tmp/log file'],
    ['imagesDir', '/tmp/ünïcode'],
  ] as const)('rejects %s = %j before it can reach argv', (key, value) => {
    expect(() => validateInstanceRequest({ ...base, [key]: value }, { cwd: '/srv' })).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it('resolves relative paths against the working directory', () => {
    const spec = validateInstanceRequest({ ...base, imagesDir: 'images', template: 'tmpl.img' }, { cwd: '/srv' });
    expect(spec.imagesDir).toBe('/srv/images');
    expect(spec.template).toBe('/srv/tmpl.img');
    expect(spec.diskPath).toBe('/srv/images/jgoulah-disk0');
  });

  it('parses network choices', () => {
    expect(validateInstanceRequest({ ...base, network: 'user' }).network).toEqual({ kind: 'user' });
    expect(validateInstanceRequest({ ...base, network: 'network=default' }).network).toEqual({ kind: 'network', name: 'default' });
    expect(validateInstanceRequest({ ...base, network: 'bridge=virbr1' }).network).toEqual({ kind: 'bridge', name: 'virbr1' });
  });

  it('requires IP and HOST', () => {
    expect(() => validateInstanceRequest({ host: 'a' })).toThrow(/missing the instance IP/);
    expect(() => validateInstanceRequest({ ip: '192.168.1.2' })).toThrow(/missing the instance host/);
  });
});

describe('buildKernelArgs', () => {
  it('produces the article\'s kernel arguments in order, extras appended', () => {
    const spec = validateInstanceRequest({ ...base, kernelArgs: 'panic=-1 net.ifnames=0' });
    expect(buildKernelArgs(spec)).toEqual([
      'root=/dev/vda',
      'console=ttyS0',
      '_device=eth0',
      '_ip=192.168.1.197',
      '_hostname=jgoulah.linux.bogus',
      '_gateway=192.168.1.1',
      '_dns1=192.168.1.101',
      '_netmask=255.255.255.0',
      'panic=-1',
      'net.ifnames=0',
    ]);
  });
});

describe('validateInstanceRequest reports every problem at once', () => {
  it('lists all problems, and a gateway outside the subnet does not hide the others', () => {
    let error: unknown;
    try {
      validateInstanceRequest({ ip: '10.0.0.5', host: 'bad_host!', ram: 'lots', mac: 'zz', graphics: 'spice', gateway: '192.168.1.1' });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'E_INVALID_ARGUMENT', hint: 'fix them all and run again; nothing was written' });
    const message = (error as Error).message;
    expect(message).toMatch(/^5 problems with instance bad_host!:\n {2}- /);
    expect(message).toMatch(/host/);
    expect(message).toMatch(/gateway 192\.168\.1\.1 is outside the instance's subnet 10\.0\.0\.0\/24/);
    expect(message).toMatch(/ram/);
    expect(message).toMatch(/graphics/);
  });

  it('keeps a single problem as its own error with its hint', () => {
    expect(() => validateInstanceRequest({ ip: '10.0.0.5', host: 'web1', gateway: '10.0.0.1', nameserver: '10.0.0.2', graphics: 'spice' })).toThrow(/^Expected `graphics` to be vnc or none/);
  });
});
