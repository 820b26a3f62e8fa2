import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodePosixAcl, indexTar, makedev, parsePaxRecords, paxTimeNs } from '../../../src/build/tar-index.js';
import { detectCompression, parseOwner, parseOwnerMap } from '../../../src/build/fill.js';
import { parseFilesystemSpec } from '../../../src/build/disk-build.js';
import { encodeSwapSignature } from '../../../src/build/swap.js';
import { tempDir } from '../../helpers/tmp.js';

/** A ustar header block for `name` (checksum filled in). */
function header(name: string, options: { type?: string; size?: number; mode?: number; linkname?: string } = {}): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write(`${(options.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(`${(options.size ?? 0).toString(8).padStart(11, '0')}\0`, 124);
  b.write('14000000000\0', 136);
  b.write('        ', 148);
  b.write(options.type ?? '0', 156);
  if (options.linkname) b.write(options.linkname, 157, 100);
  b.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return b;
}

const pad = (data: Buffer): Buffer => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
const paxRecord = (key: string, value: Buffer | string): Buffer => {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
};

async function archive(blocks: Buffer[]): Promise<string> {
  const dir = await tempDir();
  const path = join(dir, 'a.tar');
  await writeFile(path, Buffer.concat([...blocks, Buffer.alloc(1024)]));
  return path;
}

describe('indexTar', () => {
  it('keeps binary pax xattrs, nanosecond times, hard links and implicit parent directories', async () => {
    const cap = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const pax = pad(Buffer.concat([paxRecord('SCHILY.xattr.security.capability', cap), paxRecord('mtime', '1620284889.123456789'), paxRecord('uid', '1000')]));
    const path = await archive([
      header('./PaxHeaders/ping', { type: 'x', size: pax.length }), pax,
      header('usr/bin/ping', { size: 3, mode: 0o755 }), pad(Buffer.from('elf')),
      header('usr/bin/ping6', { type: '1', linkname: 'usr/bin/ping' }),
    ]);
    const index = indexTar(path);
    const byPath = new Map(index.entries.map((e) => [e.path, e]));
    expect([...byPath.keys()].sort()).toEqual(['', 'usr', 'usr/bin', 'usr/bin/ping', 'usr/bin/ping6']);
    const ping = byPath.get('usr/bin/ping')!;
    expect(ping.xattrs.map(([n, v]) => [n, Buffer.from(v).toString('hex')])).toEqual([['security.capability', cap.toString('hex')]]);
    expect(ping.mtimeNs).toBe(1620284889123456789n);
    expect(ping.uid).toBe(1000);
    expect(ping.nlink).toBe(2);
    expect(byPath.get('usr/bin/ping6')!.ino).toBe(ping.ino);
    expect(index).toMatchObject({ files: 1, bytes: 3 });
  });

  it('rejects `..` escapes, bad checksums and truncated data with one-line errors', async () => {
    await expect(async () => indexTar(await archive([header('../etc/passwd')]))).rejects.toThrow(/`\.\.` component/);
    const bad = header('x');
    bad[0] = 0x79;
    await expect(async () => indexTar(await archive([bad]))).rejects.toThrow(/bad checksum/);
    const dir = await tempDir();
    const truncated = join(dir, 't.tar');
    await writeFile(truncated, Buffer.concat([header('big', { size: 100_000 }), Buffer.alloc(512)]));
    expect(() => indexTar(truncated)).toThrow(/past the end of the archive/);
  });
});

describe('tar helpers', () => {
  it('parses pax records on raw bytes, including values with newlines and non-UTF-8 bytes', () => {
    const value = Buffer.from([0xff, 0x0a, 0x00, 0x41]);
    const records = parsePaxRecords(Buffer.concat([paxRecord('a', value), paxRecord('path', 'x/y')]));
    expect(Buffer.from(records.get('a')!).equals(value)).toBe(true);
    expect(Buffer.from(records.get('path')!).toString()).toBe('x/y');
    expect(() => parsePaxRecords(Buffer.from('99 a=b\n'))).toThrow(/length/);
  });

  it('reads pax times to the nanosecond', () => {
    expect(paxTimeNs('1.5')).toBe(1_500_000_000n);
    expect(paxTimeNs('1700000000.000000001')).toBe(1_700_000_000_000_000_001n);
    expect(paxTimeNs('abc')).toBeUndefined();
  });

  it("encodes GNU tar's ACL text as the kernel's xattr, sorted by tag and id", () => {
    const acl = encodePosixAcl('user::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::r--\n');
    expect(Buffer.from(acl).toString('hex')).toBe('02000000' + '01000600ffffffff' + '02000400e8030000' + '04000400ffffffff' + '10000400ffffffff' + '20000400ffffffff');
    expect(() => encodePosixAcl('user:alice:r--')).toThrow(/numeric ids/);
  });

  it('encodes device numbers as glibc makedev does', () => {
    expect(makedev(8, 1)).toBe(0x801);
    expect(makedev(259, 300)).toBe(0x11032c);
  });

  it('detects compression by magic number and parses owners and --fs specs', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe('xz');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]))).toBe('zstd');
    expect(detectCompression(Buffer.from('./etc\0'))).toBe('none');
    expect(parseOwner('root')).toEqual({ uid: 0, gid: 0 });
    expect(parseOwner('1000:100')).toEqual({ uid: 1000, gid: 100 });
    expect(() => parseOwner('alice')).toThrow(/root or UID:GID/);
    expect(parseOwnerMap('# c\nuid 1000 0\n\ngid 1000 0 # the build user\n')).toEqual({ uidMap: [[1000, 0]], gidMap: [[1000, 0]] });
    expect(() => parseOwnerMap('uid alice 0\n', 'm.txt')).toThrow(/m\.txt line 1/);
    expect(parseFilesystemSpec('1=ext3,label=root:rootfs.tar')).toEqual({ partition: 1, type: 'ext3', label: 'root', from: 'rootfs.tar' });
    expect(parseFilesystemSpec('5=swap')).toEqual({ partition: 5, type: 'swap' });
    expect(() => parseFilesystemSpec('5=swap:x.tar')).toThrow(/no contents/);
    expect(() => parseFilesystemSpec('1=xfs')).toThrow(/ext2, ext3, ext4 or swap/);
  });

  it('refuses a swap area smaller than ten pages', () => {
    expect(() => encodeSwapSignature(4096 * 9)).toThrow(/at least 10 pages/);
    expect(encodeSwapSignature(4096 * 10, { uuid: '00000000-0000-0000-0000-000000000001' })[1028]).toBe(9);
  });
});
