import { afterAll, describe, expect, it } from 'vitest';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { closeE2fsPool, runE2fsTool } from '../../src/e2fs/index.js';
import { withFilesystem } from '../../src/ext/index.js';
import { decodeTime, encodeTime } from '../../src/ext/inode-times.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV, makeExtImage } from '../unit/ext/ext-images.js';

await requireTool('debugfs', 'e2fsprogs');

afterAll(async () => {
  await closeE2fsPool();
});

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

describe('e2fsck with a clock past 2038 (E2FSCK_TIME)', () => {
  it('keeps correctly encoded pre-1970 and post-2038 inode times, as host e2fsck does (f_pre_1970_date_encoding)', async () => {
    const dir = await tempDir();
    const image = join(dir, 'dates.img');
    await execa('truncate', ['-s', '5M', image]);
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-I', '256', image], { env: SBIN_ENV });
    const commands: string[] = [];
    for (const [name, time, extra] of [['y1909', -1907928000, 3], ['y1979', 299592000, 0], ['y2039', 2191752000, 1], ['y2139', 5345352000, 1]] as const) {
      commands.push(`write /dev/null ${name}`);
      for (const field of ['atime', 'ctime', 'mtime', 'crtime']) commands.push(`set_inode_field ${name} ${field} @${time}`, `set_inode_field ${name} ${field}_extra ${extra}`);
    }
    await execa('debugfs', ['-w', '-f', '-', image], { env: SBIN_ENV, input: `${commands.join('\n')}\n` });
    // Before 2242 e2fsck repairs the old pre-1970 encoding (epoch bits 3); after it, they are a
    // real date past 2378 and stay. Each clock gets a fresh copy of the unrepaired image.
    for (const now of ['1386393539', '9270393539']) {
      const [ours, theirs] = [join(dir, `ours-${now}.img`), join(dir, `theirs-${now}.img`)];
      await copyFile(image, ours);
      await copyFile(image, theirs);
      const env = { E2FSCK_TIME: now, TZ: 'GMT0' };
      const ourRun = await runE2fsTool('e2fsck', ['-fy', ours], { env });
      const hostRun = await execa('e2fsck', ['-fy', theirs], { env: { ...SBIN_ENV, ...env }, reject: false, stripFinalNewline: false });
      expect(ourRun.exitCode, now).toBe(hostRun.exitCode);
      expect(ourRun.stdout.replaceAll(ours, 'IMG'), now).toBe(hostRun.stdout.replaceAll(theirs, 'IMG'));
      expect(Buffer.compare(await readFile(ours), await readFile(theirs)), now).toBe(0);
      const stat = await execa('debugfs', ['-R', 'stat y1909', ours], { env: SBIN_ENV });
      expect(stat.stdout, now).toMatch(now === '9270393539' ? /mtime: 0x8e475440:00000003/ : /mtime: 0x8e475440:00000000/);
    }
  });

  it('prints a clock past 2038 as host e2fsck does ("now = …" in the future-time message)', async () => {
    const dir = await tempDir();
    const image = join(dir, 'future.img');
    await makeExtImage(image, 'ext4', '8M');
    await execa('debugfs', ['-w', '-R', 'ssv mtime 4000000000', image], { env: SBIN_ENV });
    const env = { E2FSCK_TIME: '3000000000', TZ: 'GMT0' };
    const ourRun = await runE2fsTool('e2fsck', ['-fn', image], { env });
    const hostRun = await execa('e2fsck', ['-fn', image], { env: { ...SBIN_ENV, ...env }, reject: false, stripFinalNewline: false });
    expect(ourRun.stdout.replaceAll(image, 'IMG')).toBe(hostRun.stdout.replaceAll(image, 'IMG'));
    expect(ourRun.stdout).toContain('now = Sat Jan 24 05:20:00 2065');
    expect(ourRun.stdout).toContain('(Tue Oct  2 07:06:40 2096,');
  });
});
