import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { debianCacheDir, debianRootfs, debianRootfsInputs, debianRootfsKey, mirrorFromSources, mmdebstrapArgs } from '../../helpers/debian-rootfs.js';
import { requireTool } from '../../helpers/oracle.js';
import { tempDir } from '../../helpers/tmp.js';

const SOURCES = `Types: deb
URIs: http://deb.debian.org/debian/
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`;

describe('the cached Debian root tarball builder', () => {
  it('takes the mirror from the deb822 stanza that names the suite', () => {
    expect(mirrorFromSources(SOURCES)).toBe('http://deb.debian.org/debian');
    expect(mirrorFromSources(SOURCES, 'bookworm-security')).toBe('http://deb.debian.org/debian-security');
    expect(mirrorFromSources(SOURCES, 'trixie')).toBeUndefined();
  });

  it('names the cache by its inputs: package order does not matter, a package or the mirror does', () => {
    const mirror = 'http://deb.debian.org/debian';
    const a = debianRootfsKey(debianRootfsInputs({ packages: ['udev', 'ifupdown'], mirror }));
    expect(debianRootfsKey(debianRootfsInputs({ packages: ['ifupdown', 'udev', 'udev'], mirror }))).toBe(a);
    expect(debianRootfsKey(debianRootfsInputs({ packages: ['ifupdown'], mirror }))).not.toBe(a);
    expect(debianRootfsKey(debianRootfsInputs({ packages: ['udev', 'ifupdown'], mirror: 'http://example.org/debian' }))).not.toBe(a);
  });

  it('refuses package names, suites and mirrors that could smuggle options into argv', () => {
    const mirror = 'http://deb.debian.org/debian';
    expect(() => debianRootfsInputs({ packages: ['--hook-dir=/x'], mirror })).toThrow(/bad package name/);
    expect(() => debianRootfsInputs({ packages: ['a,b'], mirror })).toThrow(/bad package name/);
    expect(() => debianRootfsInputs({ packages: [], suite: 'bookworm main', mirror })).toThrow(/bad suite/);
    expect(() => debianRootfsInputs({ packages: [], mirror: 'http://x/ bookworm contrib' })).toThrow(/bad mirror/);
  });

  it('runs mmdebstrap in root mode as root and in unshare mode otherwise', () => {
    const inputs = debianRootfsInputs({ packages: ['udev'], mirror: 'http://deb.debian.org/debian' });
    expect(mmdebstrapArgs(inputs, '/c/x.tar', true)).toEqual([
      '--mode=root', '--variant=minbase', '--format=tar', '--include=udev', 'bookworm', '/c/x.tar', 'deb http://deb.debian.org/debian bookworm main',
    ]);
    expect(mmdebstrapArgs(inputs, '/c/x.tar', false)[0]).toBe('--mode=unshare');
  });

  it('uses DISKWRIGHT_CACHE, else ~/.cache/diskwright', () => {
    expect(debianCacheDir({ DISKWRIGHT_CACHE: '/c' })).toBe('/c/debian');
    expect(debianCacheDir({ HOME: '/h' })).toBe('/h/.cache/diskwright/debian');
  });

  it('builds a tarball from Debian packages once and reuses it on the next call', async () => {
    await requireTool('mmdebstrap', 'mmdebstrap');
    const cacheDir = await tempDir('diskwright-debcache-');
    // The extract variant only unpacks the named packages: seconds, but real Debian packages.
    const first = await debianRootfs({ packages: ['base-files'], variant: 'extract', cacheDir });
    expect(first.cached).toBe(false);
    const listing = (await execa('tar', ['-tf', first.tarball])).stdout.split('\n');
    expect(listing).toContain('./etc/debian_version');
    const second = await debianRootfs({ packages: ['base-files'], variant: 'extract', cacheDir });
    expect(second).toEqual({ tarball: first.tarball, cached: true, seconds: 0 });
    const left = (await execa('ls', ['-A', cacheDir])).stdout.split('\n');
    expect(left).toEqual([first.tarball.split('/').pop()]);
  }, 300_000);
});
