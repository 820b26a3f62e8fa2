import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { busyboxPath, defaultBootCacheDir, initramfsEntries, parseKernelPackage, parseShowDepends, readStaticBusybox } from '../../../src/demo/bootkit.js';
import { isStaticElf64 } from '../../../src/demo/elf.js';

describe('parseKernelPackage', () => {
  it('picks the versioned kernel package out of apt-cache depends output', () => {
    expect(parseKernelPackage('linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n')).toBe('linux-image-6.1.0-56-amd64');
  });

  it('ignores names that are not kernel image packages (nothing odd reaches apt-get argv)', () => {
    expect(parseKernelPackage('x\n  Depends: --option=evil\n  Depends: linux-image-6.1.0-56-amd64;rm\n')).toBeUndefined();
    expect(parseKernelPackage('')).toBeUndefined();
  });
});

describe('parseShowDepends', () => {
  const root = '/c/root/lib/modules/6.1.0-56-amd64';

  it('returns module paths in load order and skips builtins', () => {
    const out = `insmod ${root}/kernel/fs/jbd2/jbd2.ko \nbuiltin crc16\ninsmod ${root}/kernel/fs/ext4/ext4.ko \n`;
    expect(parseShowDepends(out, root)).toEqual(['kernel/fs/jbd2/jbd2.ko', 'kernel/fs/ext4/ext4.ko']);
  });

  it('refuses a module outside the unpacked kernel tree', () => {
    expect(() => parseShowDepends('insmod /lib/modules/6.1/kernel/x.ko\n', root)).toThrow(/outside the unpacked kernel/);
  });
});

describe('defaultBootCacheDir', () => {
  it('prefers DISKWRIGHT_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(defaultBootCacheDir({ DISKWRIGHT_CACHE_DIR: '/a', XDG_CACHE_HOME: '/b' })).toBe('/a/boot');
    expect(defaultBootCacheDir({ XDG_CACHE_HOME: '/b', HOME: '/h' })).toBe('/b/diskwright/boot');
    expect(defaultBootCacheDir({ HOME: '/h' })).toBe('/h/.cache/diskwright/boot');
  });
});

describe('initramfsEntries', () => {
  it('holds /init, busybox, /dev/console and the modules with their load order list', () => {
    const entries = initramfsEntries({ init: new Uint8Array([1]), busybox: new Uint8Array([2]), modules: [{ name: 'b.ko', data: new Uint8Array() }, { name: 'a.ko', data: new Uint8Array() }] });
    const paths = entries.map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['init', 'bin/busybox', 'bin/sh', 'dev/console', 'lib/modules/b.ko', 'lib/modules/a.ko', 'newroot']));
    const order = entries.find((e) => e.path === 'etc/diskwright-modules');
    expect(order?.type === 'file' && new TextDecoder().decode(order.data)).toBe('b.ko\na.ko\n');
  });
});

/** A minimal ELF64 header with one PT_LOAD program header and no PT_INTERP. */
function staticElf64(): Uint8Array {
  const bytes = new Uint8Array(0x40 + 0x38);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  const view = new DataView(bytes.buffer);
  view.setUint16(0x10, 2, true); // ET_EXEC
  view.setUint16(0x12, 0x3e, true); // x86-64
  view.setBigUint64(0x20, 0x40n, true); // e_phoff
  view.setUint16(0x36, 0x38, true); // e_phentsize
  view.setUint16(0x38, 1, true); // e_phnum
  view.setUint32(0x40, 1, true); // PT_LOAD
  return bytes;
}

describe('isStaticElf64', () => {
  it('tells a static ELF64 executable from a dynamically linked program', async () => {
    expect(isStaticElf64(staticElf64())).toBe(true);
    expect(isStaticElf64(await readFile(process.execPath))).toBe(false);
  });

  it('accepts the host busybox when it is static (busybox-static or DISKWRIGHT_BUSYBOX), refuses it otherwise', async () => {
    // Either Debian package may be installed: busybox-static passes, plain busybox is dynamic.
    const bytes = await readFile(busyboxPath()).catch(() => undefined);
    if (bytes === undefined) return expect(readStaticBusybox(busyboxPath())).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    if (isStaticElf64(bytes)) return expect(readStaticBusybox(busyboxPath())).resolves.toHaveLength(bytes.length);
    return expect(readStaticBusybox(busyboxPath())).rejects.toMatchObject({ code: 'E_BOOT' });
  });

  test.prop([fc.uint8Array({ maxLength: 512 })])('never throws on arbitrary bytes', (bytes) => {
    expect(typeof isStaticElf64(bytes)).toBe('boolean');
  });
});
