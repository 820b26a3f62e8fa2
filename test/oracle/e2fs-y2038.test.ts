import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execa } from 'execa';
import { withFilesystem } from '../../src/ext/index.js';
import { decodeTime, encodeTime } from '../../src/ext/inode-times.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV, makeExtImage } from '../unit/ext/ext-images.js';

await requireTool('debugfs', 'e2fsprogs');

/** Host debugfs `stat`: the mtime line, e.g. ` mtime: 0xf4b2a1c2:c4c4b404 -- Wed Feb  3 04:05:06 2100`. */
async function hostMtime(image: string, path: string): Promise<string> {
  const { stdout } = await execa('debugfs', ['-R', `stat "${path}"`, image], { env: { ...SBIN_ENV, TZ: 'UTC' } });
  const line = stdout.split('\n').find((l) => /^\s*mtime:/.test(l));
  if (!line) throw new Error(`no mtime in debugfs stat:\n${stdout}`);
  return line.trim();
}

describe('timestamps outside 1970–2038', () => {
  it('round-trip through utimes and stat on large inodes, as host debugfs reads them', async () => {
    const dir = await tempDir();
    const image = join(dir, 'times.img');
    await makeExtImage(image, 'ext4', '16M');
    const dates = {
      '/y2100': new Date('2100-02-03T04:05:06.750Z'),
      '/y2038': new Date('2038-01-19T03:14:08Z'), // 2^31: the first second a signed 32-bit field cannot hold
      '/y1901': new Date('1901-12-14T20:45:52Z'),
      '/y1969': new Date('1969-07-20T20:17:40.25Z'),
    };
    await withFilesystem(image, { write: true }, async (fs) => {
      for (const [path, when] of Object.entries(dates)) {
        await fs.writeFile(path, path);
        await fs.utimes(path, when, when);
      }
    });
    await withFilesystem(image, {}, async (fs) => {
      for (const [path, when] of Object.entries(dates)) {
        expect((await fs.stat(path)).mtime.getTime(), path).toBe(Math.floor(when.getTime() / 1000) * 1000);
      }
    });
    expect(await hostMtime(image, '/y2100')).toMatch(/-- Wed Feb  3 04:05:06 2100$/);
    expect(await hostMtime(image, '/y2038')).toMatch(/-- Tue Jan 19 03:14:08 2038$/);
    expect(await hostMtime(image, '/y1901')).toMatch(/-- Fri Dec 13 20:45:52 1901$|-- Sat Dec 14 20:45:52 1901$/);
    expect(await hostMtime(image, '/y1969')).toMatch(/-- Sun Jul 20 20:17:40 1969$/);
    // Nanoseconds above the 2 epoch bits: 750000000 << 2 | epoch 1.
    expect(await hostMtime(image, '/y2100')).toMatch(/^mtime: 0xf4b211f2:b2d05e01 /);
  });

  it('clamp, not wrap, on 128-byte inodes that have no epoch bits (as the kernel does)', async () => {
    const dir = await tempDir();
    const image = join(dir, 'small.img');
    await makeExtImage(image, 'ext2', '8M', ['-I', '128']);
    await withFilesystem(image, { write: true }, async (fs) => {
      await fs.writeFile('/late', 'x');
      await fs.utimes('/late', new Date('2100-01-01T00:00:00Z'), new Date('2100-01-01T00:00:00Z'));
    });
    expect(await hostMtime(image, '/late')).toMatch(/^mtime: 0x7fffffff -- Tue Jan 19 03:14:07 2038$/);
  });

  it('encodes like the kernel: low word signed, epoch = (seconds - low) / 2^32', () => {
    const last = 2 ** 31 - 1 + 3 * 2 ** 32; // 2446-05-10: the largest time ext4 can store
    for (const seconds of [0, 1, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -(2 ** 31), 4102444800, last]) {
      const { seconds: low, extra } = encodeTime(seconds * 1000);
      expect(decodeTime(low, extra), String(seconds)).toBe(seconds);
    }
    const beyond = encodeTime((last + 1) * 1000);
    expect(decodeTime(beyond.seconds, beyond.extra)).toBe(last);
  });
});
