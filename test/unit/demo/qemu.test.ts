import { describe, expect, it } from 'vitest';
import { buildQemuArgs, qemuOptionValue } from '../../../src/demo/qemu.js';

describe('buildQemuArgs', () => {
  const base = { kernel: '/k/vmlinuz', initrd: '/k/initrd.img', disk: '/d/web01-disk0', append: 'root=/dev/vda console=ttyS0 panic=-1 net.ifnames=0', log: '/d/console.log' };

  it('boots with TCG, q35, a virtio disk and NIC, the serial console in a file and no reboot', () => {
    expect(buildQemuArgs(base)).toEqual([
      '-accel', 'tcg', '-cpu', 'max', '-m', '512', '-machine', 'q35',
      '-kernel', '/k/vmlinuz', '-initrd', '/k/initrd.img', '-append', base.append,
      '-drive', 'file=/d/web01-disk0,if=virtio,format=raw',
      '-nic', 'user,model=virtio-net-pci,restrict=on',
      '-nographic', '-serial', 'file:/d/console.log', '-monitor', 'none', '-no-reboot',
    ]);
  });

  it('doubles commas in the disk path so it cannot add drive options', () => {
    expect(qemuOptionValue('/d/a,format=qcow2')).toBe('/d/a,,format=qcow2');
    expect(buildQemuArgs({ ...base, disk: '/d/x,readonly=on' })).toContain('file=/d/x,,readonly=on,if=virtio,format=raw');
  });

  it('refuses control characters in the kernel command line and paths, and odd memory sizes', () => {
    expect(() => buildQemuArgs({ ...base, append: 'root=/dev/vda\ninit=/bin/sh' })).toThrow(/control characters/);
    expect(() => buildQemuArgs({ ...base, disk: 'a\nb' })).toThrow(/not usable/);
    expect(() => buildQemuArgs({ ...base, memoryMiB: 1.5 })).toThrow(/out of range/);
  });
});
