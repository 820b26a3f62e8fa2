import { describe, expect, it, afterAll } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { closeE2fsPool, imageSpec, runE2fsTool, E2fsWorkerPool, wasmDistDir, defaultE2fsEnv, makeFilesystem } from '../../../src/e2fs/index.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';
import { FAKE_TIME, sparseFile } from './host.js';

afterAll(async () => {
  await closeE2fsPool();
});

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('runE2fsTool', () => {
  it('returns the tool’s own exit code and output for a missing image', async () => {
    const result = await runE2fsTool('e2fsck', ['-fn', '/nonexistent/diskwright.img']);
    expect(result.exitCode).toBe(8);
    expect(result.stderr).toContain('No such file or directory');
  });

  it('runs several tools concurrently and each gets its own output', async () => {
    const dir = await tempDir();
    const images = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const path = join(dir, `fs${i}.img`);
        await makeFilesystem(path, { type: 'ext4', size: 16 << 20, label: `vol${i}` });
        return path;
      }),
    );
    const dumps = await Promise.all(images.map((image) => runE2fsTool('dumpe2fs', ['-h', image])));
    dumps.forEach((dump, i) => {
      expect(dump.exitCode).toBe(0);
      expect(dump.stdout).toMatch(new RegExp(`Filesystem volume name:\\s+vol${i + 1}\\n`));
    });
  });

  it('never sees a terminal: a prompt reads the given stdin instead of hanging', async () => {
    const dir = await tempDir();
    const image = join(dir, 'prompt.img');
    await makeFilesystem(image, { type: 'ext2', size: 8 << 20 });
    // debugfs reads its commands from stdin when no -R/-f is given.
    const result = await runE2fsTool('debugfs', [image], { stdin: 'stats\nquit\n' });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('Filesystem magic number:  0xEF53');
  });

  it('kills a run when its signal fires, rejects with E_ABORTED and leaks no file descriptors', async () => {
    const dir = await tempDir();
    const image = join(dir, 'big.img');
    await sparseFile(image, 8 * 2 ** 30);
    await runE2fsTool('e2fsck', ['-fn', '/nonexistent']); // warm a worker so its own fds are counted
    const before = openFdCount();
    const controller = new AbortController();
    // Zeroing 1 GiB of inode tables by plain writes (no zeroout, no sparse skipping) takes seconds.
    const run = runE2fsTool('mke2fs', ['-F', '-t', 'ext4', '-E', 'lazy_itable_init=0,nodiscard', '-N', '4000000', image], {
      signal: controller.signal,
      sparse: false,
      env: { UNIX_IO_NOZEROOUT: '1' },
    });
    setTimeout(() => controller.abort(), 100);
    const error = await run.catch((e: unknown) => e);
    expect(isDiskwrightError(error, 'E_ABORTED')).toBe(true);
    expect(openFdCount()).toBeLessThanOrEqual(before);
    // The pool replaces the killed worker.
    expect((await runE2fsTool('e2fsck', ['-fn', '/nonexistent'])).exitCode).toBe(8);
  });

  it('rejects unknown tools and NUL bytes in arguments', async () => {
    await expect(runE2fsTool('fsck.vfat' as never, [])).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    await expect(runE2fsTool('e2fsck', ['-fn', 'a\0b'])).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });

  it('gives tools the shipped mke2fs.conf and forwards E2FSPROGS_FAKE_TIME from the environment', () => {
    const env = defaultE2fsEnv({ E2FSPROGS_FAKE_TIME: String(FAKE_TIME), HOME: '/root' });
    expect(env.MKE2FS_CONFIG).toBe(join(wasmDistDir(), 'mke2fs.conf'));
    expect(env.E2FSPROGS_FAKE_TIME).toBe(String(FAKE_TIME));
    expect(env.HOME).toBeUndefined();
  });

  it('queues jobs beyond the pool size instead of failing', async () => {
    const pool = new E2fsWorkerPool(1);
    try {
      const job = { wasmDir: wasmDistDir(), tool: 'e2fsck', argv: ['-V'], env: defaultE2fsEnv() };
      const results = await Promise.all([pool.run(job), pool.run(job), pool.run(job)]);
      expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0]);
      expect(results[2]!.stderr.toString()).toContain('e2fsck 1.47.0');
    } finally {
      await pool.close();
    }
  });
});

describe('imageSpec', () => {
  it('appends ?offset= for a filesystem inside an image', () => {
    expect(imageSpec('disk.img', 1048576n)).toBe('disk.img?offset=1048576');
    expect(imageSpec('disk.img', 0)).toBe('disk.img');
    expect(imageSpec('disk.img', undefined)).toBe('disk.img');
  });

  it('refuses paths that e2fsprogs would read as options or io parameters', () => {
    expect(() => imageSpec('-fy', 0)).toThrow(/not starting with `-`/);
    expect(() => imageSpec('a?offset=1', 0)).toThrow(/without `\?`/);
    expect(() => imageSpec('a.img', -1)).toThrow(/non-negative/);
  });
});

describe('paths', () => {
  it('resolves relative image paths against the caller’s working directory', async () => {
    const dir = await tempDir();
    await makeFilesystem(join(dir, 'rel.img'), { type: 'ext2', size: 4 << 20, label: 'relative' });
    const previous = process.cwd();
    process.chdir(dir);
    try {
      const result = await runE2fsTool('dumpe2fs', ['-h', 'rel.img']);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/Filesystem volume name:\s+relative/);
    } finally {
      process.chdir(previous);
    }
  });
});
