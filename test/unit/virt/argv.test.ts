import { describe, expect, it } from 'vitest';
import {
  buildVirshDestroyArgs,
  buildVirshDomblklistArgs,
  buildVirshListArgs,
  buildVirshStartArgs,
  buildVirshUndefineArgs,
  buildVirshVolCreateAsArgs,
  buildVirshVolUploadArgs,
  buildVirtInstallArgs,
  formatCommandLine,
  type VirtInstallSpec,
} from '../../../src/virt/index.js';

const article: VirtInstallSpec = {
  name: 'jgoulah',
  ramMiB: 512,
  vcpus: 1,
  disk: { path: '/var/lib/libvirt/images/jgoulah-disk0' },
  network: { kind: 'bridge', name: 'br0' },
  mac: '52:54:00:12:34:56',
  kernel: '/var/lib/libvirt/kernels/vmlinuz-2.6.32-5-amd64',
  initrd: '/var/lib/libvirt/kernels/initrd.img-2.6.32-5-amd64',
  kernelArgs: ['root=/dev/vda', 'console=ttyS0', '_device=eth0', '_ip=192.168.1.197', '_hostname=jgoulah.linux.bogus', '_gateway=192.168.1.1', '_dns1=192.168.1.101', '_netmask=255.255.255.0'],
};

describe('buildVirtInstallArgs', () => {
  it('builds the article\'s virt-install flags as an argv array', () => {
    expect(buildVirtInstallArgs(article)).toEqual([
      '--name', 'jgoulah',
      '--ram', '512',
      '--vcpus', '1',
      '--cpuset=auto',
      '--cpu', 'host',
      '--disk', 'path=/var/lib/libvirt/images/jgoulah-disk0,bus=virtio,cache=none',
      '--network', 'bridge=br0',
      '--mac', '52:54:00:12:34:56',
      '--import',
      '--noreboot',
      '--noautoconsole',
      '--graphics', 'vnc',
      '--boot',
      'kernel=/var/lib/libvirt/kernels/vmlinuz-2.6.32-5-amd64,initrd=/var/lib/libvirt/kernels/initrd.img-2.6.32-5-amd64,kernel_args="root=/dev/vda console=ttyS0 _device=eth0 _ip=192.168.1.197 _hostname=jgoulah.linux.bogus _gateway=192.168.1.1 _dns1=192.168.1.101 _netmask=255.255.255.0"',
      '--osinfo', 'detect=on,require=off',
    ]);
  });

  it('adds --connect first, and --virt-type, --serial, an explicit OS, pool volumes and user networking', () => {
    const argv = buildVirtInstallArgs({
      ...article,
      connect: 'qemu+ssh://root@kvm1/system',
      virtType: 'qemu',
      os: 'linux2022',
      serialLog: '/tmp/serial.log',
      disk: { pool: 'default', volume: 'jgoulah-disk0' },
      network: { kind: 'user' },
      initrd: undefined,
      graphics: 'none',
    });
    expect(argv.slice(0, 2)).toEqual(['--connect', 'qemu+ssh://root@kvm1/system']);
    expect(argv).toContain('vol=default/jgoulah-disk0,bus=virtio,cache=none');
    expect(argv).toContain('user,model=virtio');
    expect(argv[argv.indexOf('--osinfo') + 1]).toBe('linux2022');
    expect(argv.slice(-4)).toEqual(['--virt-type', 'qemu', '--serial', 'pty,log.file=/tmp/serial.log']);
    expect(argv[argv.indexOf('--boot') + 1]).toMatch(/^kernel=[^,]+,kernel_args="/);
    expect(argv[argv.indexOf('--graphics') + 1]).toBe('none');
  });

  it.each([
    ['name', 'a;rm -rf /'],
    ['name', '--foo'],
    ['mac', '52:54:00:12:34:56,model=e1000'],
    ['kernel', '/boot/vmlinuz,initrd=/x'],
    ['kernel', 'vmlinuz'],
    ['initrd', '/boot/in itrd'],
    ['cpu', 'host,+vmx'],
    ['os', '--help'],
    ['virtType', 'kvm,x'],
    ['serialLog', '/tmp/a"b'],
    ['connect', 'qemu:///system,foo'],
  ] as const)('rejects a hostile %s %j', (key, value) => {
    expect(() => buildVirtInstallArgs({ ...article, [key]: value })).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it.each(['x,bus=ide', 'a b', 'a"b', "a'b", 'café', '/x\n'])('rejects a disk path containing %j', (tail) => {
    expect(() => buildVirtInstallArgs({ ...article, disk: { path: `/images/${tail}` } })).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it.each(['init=/bin/sh"', 'a b', 'x,y', '"', '--foo', ''])('rejects the kernel argument %j', (token) => {
    expect(() => buildVirtInstallArgs({ ...article, kernelArgs: [...article.kernelArgs, token] })).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects ram %s', (ram) => {
    expect(() => buildVirtInstallArgs({ ...article, ramMiB: ram })).toThrow(/`ram`/);
  });
});

describe('virsh argv builders', () => {
  it('build exact argv arrays', () => {
    expect(buildVirshStartArgs('jgoulah')).toEqual(['start', 'jgoulah']);
    expect(buildVirshStartArgs('jgoulah', { connect: 'qemu:///session' })).toEqual(['--connect', 'qemu:///session', 'start', 'jgoulah']);
    expect(buildVirshDestroyArgs('jgoulah')).toEqual(['destroy', 'jgoulah']);
    expect(buildVirshUndefineArgs('jgoulah')).toEqual(['undefine', 'jgoulah']);
    expect(buildVirshListArgs()).toEqual(['list', '--all', '--name']);
    expect(buildVirshDomblklistArgs('jgoulah')).toEqual(['domblklist', 'jgoulah', '--details']);
    expect(buildVirshVolCreateAsArgs('default', 'jgoulah-disk0', 10737418240)).toEqual([
      'vol-create-as', '--pool', 'default', '--name', 'jgoulah-disk0', '--capacity', '10737418240', '--format', 'raw',
    ]);
    expect(buildVirshVolUploadArgs('default', 'jgoulah-disk0', '/tmp/jgoulah-disk0')).toEqual([
      'vol-upload', '--pool', 'default', '--vol', 'jgoulah-disk0', '--file', '/tmp/jgoulah-disk0', '--sparse',
    ]);
  });

  it('refuse names that would become options or carry separators', () => {
    expect(() => buildVirshStartArgs('--all')).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    expect(() => buildVirshUndefineArgs('a b')).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    expect(() => buildVirshVolCreateAsArgs('-p', 'v', 1)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });
});

describe('formatCommandLine', () => {
  it('quotes words for display so the printed command can be pasted', () => {
    expect(formatCommandLine('virsh', ['start', 'jgoulah'])).toBe('virsh start jgoulah');
    expect(formatCommandLine('virt-install', ['--boot', 'kernel=/k,kernel_args="a b"'])).toBe(`virt-install --boot 'kernel=/k,kernel_args="a b"'`);
    expect(formatCommandLine('x', ["it's"])).toBe(`x 'it'\\''s'`);
  });
});
