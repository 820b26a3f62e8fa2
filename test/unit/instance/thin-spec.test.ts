import { describe, expect, it } from 'vitest';
import { parseDiskKind, validateInstanceRequest, type InstanceRequest } from '../../../src/instance/index.js';
import { buildVirshVolCreateAsArgs, buildVirtInstallArgs } from '../../../src/virt/index.js';

const base: InstanceRequest = { ip: '192.168.1.197', host: 'jgoulah' };

describe('instance disk formats (--format raw|qcow2, --standalone)', () => {
  it('keeps a raw HOST-disk0 by default', () => {
    expect(validateInstanceRequest(base, { cwd: '/srv' })).toMatchObject({ diskKind: 'raw', diskPath: '/var/lib/libvirt/images/jgoulah-disk0' });
  });

  it('makes --format qcow2 a thin HOST-disk0.qcow2 and --standalone a full one', () => {
    expect(validateInstanceRequest({ ...base, format: 'qcow2' }, { cwd: '/srv' })).toMatchObject({ diskKind: 'thin', diskPath: '/var/lib/libvirt/images/jgoulah-disk0.qcow2' });
    expect(validateInstanceRequest({ ...base, format: 'qcow2', standalone: true }, { cwd: '/srv' })).toMatchObject({ diskKind: 'standalone' });
    expect(parseDiskKind('qcow2', 'true')).toBe('standalone');
    expect(parseDiskKind('qcow2', 'false')).toBe('thin');
  });

  it('refuses unknown formats, --standalone without qcow2, and a thin disk uploaded to a pool', () => {
    expect(() => validateInstanceRequest({ ...base, format: 'vmdk' }, { cwd: '/srv' })).toThrow(/Expected `format` to be raw or qcow2, got "vmdk"/);
    expect(() => validateInstanceRequest({ ...base, standalone: true }, { cwd: '/srv' })).toThrow(/--standalone needs --format qcow2/);
    expect(() => validateInstanceRequest({ ...base, format: 'qcow2', pool: 'default' }, { cwd: '/srv' })).toThrow(/thin qcow2 overlay needs its template/);
    expect(() => parseDiskKind('qcow2', 'yes')).toThrow(/Expected `standalone` to be true or false/);
    expect(validateInstanceRequest({ ...base, format: 'qcow2', standalone: true, pool: 'default' }, { cwd: '/srv' })).toMatchObject({ pool: 'default' });
  });

  it('tells virt-install and virsh vol-create-as that the disk is qcow2', () => {
    const argv = buildVirtInstallArgs({
      name: 'jgoulah', ramMiB: 512, vcpus: 1, disk: { path: '/srv/jgoulah-disk0.qcow2' }, diskFormat: 'qcow2',
      network: { kind: 'user' }, mac: '52:54:00:12:34:56', kernel: '/k/vmlinuz', kernelArgs: ['root=/dev/vda'],
    });
    expect(argv[argv.indexOf('--disk') + 1]).toBe('path=/srv/jgoulah-disk0.qcow2,format=qcow2,bus=virtio,cache=none');
    expect(buildVirshVolCreateAsArgs('default', 'jgoulah-disk0.qcow2', 1 << 30, { format: 'qcow2' }).slice(-2)).toEqual(['--format', 'qcow2']);
    expect(buildVirshVolCreateAsArgs('default', 'jgoulah-disk0', 1 << 30).slice(-2)).toEqual(['--format', 'raw']);
  });
});
