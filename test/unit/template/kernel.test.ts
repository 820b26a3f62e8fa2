import { describe, expect, it } from 'vitest';
import { findKernel, initrdNames } from '../../../src/template/kernel.js';
import { MAX_EDIT_BYTES, readTextFile, resolveInImage } from '../../../src/template/image-path.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { memoryFs } from '../../helpers/memory-fs.js';

describe('findKernel', () => {
  it('picks the newest vmlinuz by version order and its initrd', async () => {
    const fs = memoryFs({
      '/boot/vmlinuz-6.1.0-9-amd64': 'old',
      '/boot/initrd.img-6.1.0-9-amd64': 'old-initrd',
      '/boot/vmlinuz-6.1.0-13-amd64': 'new',
      '/boot/initrd.img-6.1.0-13-amd64': 'new-initrd',
      '/boot/config-6.1.0-13-amd64': 'cfg',
    });
    expect(await findKernel(fs)).toEqual({
      version: '6.1.0-13-amd64',
      kernelEntry: '/boot/vmlinuz-6.1.0-13-amd64',
      kernelFile: '/boot/vmlinuz-6.1.0-13-amd64',
      initrdEntry: '/boot/initrd.img-6.1.0-13-amd64',
      initrdFile: '/boot/initrd.img-6.1.0-13-amd64',
    });
  });

  it('follows symlinked kernels and skips dangling ones', async () => {
    const fs = memoryFs({
      '/boot/vmlinuz-9.9': { symlink: 'nowhere' },
      '/boot/vmlinuz-5.10': { symlink: '/boot/real/vmlinuz' },
      '/boot/real/vmlinuz': 'k',
      '/boot/initramfs-5.10.img': 'i',
    });
    const found = await findKernel(fs);
    expect(found).toMatchObject({ version: '5.10', kernelFile: '/boot/real/vmlinuz', initrdFile: '/boot/initramfs-5.10.img' });
  });

  it('falls back to the /vmlinuz link and to the root of a separate /boot filesystem', async () => {
    const linked = memoryFs({ '/vmlinuz': { symlink: 'opt/k/vmlinuz-6.2' }, '/opt/k/vmlinuz-6.2': 'k' });
    expect(await findKernel(linked)).toMatchObject({ version: '6.2', kernelEntry: '/vmlinuz', kernelFile: '/opt/k/vmlinuz-6.2' });
    const bootFs = memoryFs({ '/vmlinuz-6.1.0-x': 'k', '/initrd.img-6.1.0-x': 'i', '/grub/grub.cfg': '' });
    expect(await findKernel(bootFs)).toMatchObject({ version: '6.1.0-x', initrdFile: '/initrd.img-6.1.0-x' });
  });

  it('returns the kernel without initrd when none matches its version', async () => {
    const fs = memoryFs({ '/boot/vmlinuz-6.1': 'k', '/boot/initrd.img-6.0': 'i' });
    const found = await findKernel(fs);
    expect(found.initrdFile).toBeUndefined();
  });

  it('says E_NOT_FOUND with a hint about /boot partitions when there is no kernel', async () => {
    let caught: unknown;
    try {
      await findKernel(memoryFs({ '/etc/hostname': 'x', '/boot': { dir: true } }));
    } catch (error) {
      caught = error;
    }
    expect(isDiskwrightError(caught, 'E_NOT_FOUND')).toBe(true);
    expect((caught as { hint: string }).hint).toMatch(/--partition/);
  });

  it('ignores kernel names that are not safe host file names', async () => {
    const fs = memoryFs({ '/boot/vmlinuz-.hidden': 'x', '/boot/vmlinuz-6.1 evil': 'x', '/boot/vmlinuz-6.0': 'k' });
    expect((await findKernel(fs)).version).toBe('6.0');
  });

  it('lists the initrd names of the common distributions', () => {
    expect(initrdNames('6.1')).toEqual(['initrd.img-6.1', 'initramfs-6.1.img', 'initrd-6.1', 'initrd-6.1.img']);
  });
});

describe('readTextFile', () => {
  it('refuses a configuration file larger than the named limit', async () => {
    const fs = memoryFs({ '/etc/hosts': { content: new Uint8Array(MAX_EDIT_BYTES + 1) } });
    await expect(readTextFile(fs, '/etc/hosts')).rejects.toMatchObject({ code: 'E_LIMIT', path: '/etc/hosts' });
  });
});

describe('resolveInImage', () => {
  it('keeps absolute link targets inside the image and stops symlink loops', async () => {
    const fs = memoryFs({ '/a': { symlink: '../../../etc/passwd' }, '/etc/passwd': 'root', '/loop1': { symlink: 'loop2' }, '/loop2': { symlink: 'loop1' } });
    expect((await resolveInImage(fs, '/a'))?.path).toBe('/etc/passwd');
    let caught: unknown;
    try {
      await resolveInImage(fs, '/loop1');
    } catch (error) {
      caught = error;
    }
    expect(isDiskwrightError(caught, 'E_LOOP')).toBe(true);
  });
});
