/**
 * The boot kit's fetch rules with a fake apt: reuse a cached kernel package when apt cannot name
 * one, and fail with a clear E_BOOT when nothing can be fetched.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureBootKit } from '../../src/demo/index.js';
import { tempDir } from '../helpers/tmp.js';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A PATH whose apt-cache/apt-get are scripts that fail, with the real dpkg-deb/depmod/modprobe. */
async function fakeAptPath(dir: string): Promise<string> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  for (const tool of ['apt-cache', 'apt-get']) {
    await writeFile(join(bin, tool), '#!/bin/sh\necho "E: no network in this test" >&2\nexit 100\n');
    await chmod(join(bin, tool), 0o755);
  }
  return `${bin}:/usr/bin:/bin:/usr/sbin:/sbin`;
}

describe('ensureBootKit without a working apt', () => {
  it('reuses the kernel package already in the cache and rebuilds a byte-identical initramfs from it', async () => {
    const real = await ensureBootKit();
    const dir = await tempDir('diskwright-kit-');
    const cacheDir = join(dir, 'cache');
    await mkdir(cacheDir);
    await symlink(real.deb, join(cacheDir, basename(real.deb)));
    const kit = await ensureBootKit({ cacheDir, env: { ...process.env, PATH: await fakeAptPath(dir) } });
    expect(kit.deb).toBe(join(cacheDir, basename(real.deb)));
    expect(kit.version).toBe(real.version);
    expect(kit.cached).toBe(false);
    // Same inputs, same bytes (cached by content): the kit built elsewhere from the same package.
    expect(sha256(await readFile(kit.initrd))).toBe(sha256(await readFile(real.initrd)));
    expect((await ensureBootKit({ cacheDir, env: { ...process.env, PATH: await fakeAptPath(join(dir, 'again')) } })).cached).toBe(true);
  }, 120_000);

  it('fails with E_BOOT and a hint when no kernel package is cached', async () => {
    const dir = await tempDir('diskwright-kit-');
    await expect(ensureBootKit({ cacheDir: join(dir, 'cache'), env: { ...process.env, PATH: await fakeAptPath(dir) } })).rejects.toMatchObject({
      code: 'E_BOOT',
      message: expect.stringMatching(/could not find the kernel package behind linux-image-amd64/),
      hint: expect.stringMatching(/apt-get update/),
    });
  });
});
