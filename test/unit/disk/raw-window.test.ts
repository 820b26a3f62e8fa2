import { describe, expect, it } from 'vitest';
import { closeSync, constants, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { ReadLane } from '../../../src/io/source.js';
import { join } from 'node:path';
import { PartitionWindow, RawFileDisk } from '../../../src/disk/index.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i += 1) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('RawFileDisk', () => {
  it('reads and writes at positions and reports the file size', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    writeFileSync(file, pattern(65536));
    const disk = RawFileDisk.open(file, { readOnly: false });
    expect(disk.size).toBe(65536);
    disk.write(Buffer.from('hello'), 1000);
    const back = Buffer.alloc(5);
    disk.read(back, 1000);
    expect(back.toString()).toBe('hello');
    disk.flush();
    disk.close();
    disk.close();
    expect(readFileSync(file).subarray(1000, 1005).toString()).toBe('hello');
  });

  it('writeBulk writes whole aligned pages with O_DIRECT and the rest buffered: the file holds every byte', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bulk.img');
    writeFileSync(file, Buffer.alloc(1 << 20));
    const disk = RawFileDisk.open(file, { readOnly: false });
    const model = Buffer.alloc(1 << 20);
    const aligned = new ReadLane(256 * 1024).buffer;
    const pieces: Array<[Uint8Array, number]> = [
      [aligned.fill(7, 0, 64 * 1024).subarray(0, 64 * 1024), 0], // aligned buffer, position and length: direct
      [pattern(10_000, 3), 4096 * 20], // odd length: aligned head direct only if the buffer is aligned, tail buffered
      [pattern(8192, 5), 4096 * 40 + 512], // unaligned position: buffered
      [aligned.fill(9).subarray(0, 4096 * 3 + 100), 4096 * 50], // three pages direct, 100 bytes buffered
      [aligned.subarray(16, 16 + 8192), 4096 * 60], // unaligned buffer address: buffered
    ];
    for (const [bytes, position] of pieces) {
      disk.writeBulk(bytes, position);
      model.set(bytes, position);
    }
    // Read back through the buffered descriptor (coherent with the O_DIRECT writes), then the file.
    const back = Buffer.alloc(1 << 20);
    disk.read(back, 0);
    expect(back.equals(model)).toBe(true);
    // Where this filesystem takes O_DIRECT, the process now holds an O_DIRECT descriptor of the file.
    let directAllowed = true;
    try {
      closeSync(openSync(file, constants.O_RDONLY | constants.O_DIRECT));
    } catch {
      directAllowed = false;
    }
    const directFds = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        const flags = parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
        return (flags & constants.O_DIRECT) !== 0 && readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
    expect(directFds.length).toBe(directAllowed ? 1 : 0);
    disk.flush();
    disk.close();
    expect(readFileSync(file).equals(model)).toBe(true);
  });

  it('refuses access past the end instead of reading short', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    writeFileSync(file, Buffer.alloc(4096));
    const disk = RawFileDisk.open(file, { readOnly: true });
    expect(() => disk.read(Buffer.alloc(10), 4090)).toThrow(expect.objectContaining({ code: 'E_OUT_OF_RANGE' }));
    expect(() => disk.write(Buffer.alloc(1), 0)).toThrow(/read-only/);
    disk.close();
  });

  it('discard punches a hole: the range reads as zeros and its blocks are freed', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    writeFileSync(file, pattern(4 << 20));
    const before = statSync(file).blocks;
    const disk = RawFileDisk.open(file, { readOnly: false });
    disk.discard(4096, 2 << 20);
    const back = Buffer.alloc(2 << 20);
    disk.read(back, 4096);
    expect(back.every((b) => b === 0)).toBe(true);
    disk.close();
    expect(statSync(file).blocks).toBeLessThan(before);
    expect(readFileSync(file).subarray(0, 4096).equals(pattern(4 << 20).subarray(0, 4096))).toBe(true);
  });

  it('resize grows the file with a zero tail', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    writeFileSync(file, pattern(4096));
    const disk = RawFileDisk.open(file, { readOnly: false });
    disk.resize(1 << 20);
    expect(disk.size).toBe(1 << 20);
    const tail = Buffer.alloc(4096, 1);
    disk.read(tail, (1 << 20) - 4096);
    expect(tail.every((b) => b === 0)).toBe(true);
    disk.close();
    expect(statSync(file).size).toBe(1 << 20);
  });

  it('a missing file is a one-line E_NOT_FOUND error', () => {
    let error: unknown;
    try {
      RawFileDisk.open('/nonexistent/x.img', { readOnly: true });
    } catch (e) {
      error = e;
    }
    expect(isDiskwrightError(error, 'E_NOT_FOUND')).toBe(true);
  });
});

describe('PartitionWindow', () => {
  it('maps position 0 to its offset and stays inside its length', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const bytes = pattern(16384);
    writeFileSync(file, bytes);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const window = new PartitionWindow(disk, 4096, 8192);
    const got = Buffer.alloc(100);
    window.read(got, 10);
    expect(got.equals(bytes.subarray(4106, 4206))).toBe(true);
    window.write(Buffer.from('xyz'), 8189);
    expect(() => window.write(Buffer.from('xyzw'), 8189)).toThrow(expect.objectContaining({ code: 'E_OUT_OF_RANGE' }));
    expect(window.allocation(0, 8192)).toEqual([{ position: 0, length: 8192, state: 'data' }]);
    window.close();
    disk.read(got.subarray(0, 3), 4096 + 8189);
    expect(got.subarray(0, 3).toString()).toBe('xyz');
    disk.close();
  });

  it('refuses a window past the end of its parent', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    writeFileSync(file, Buffer.alloc(8192));
    const disk = RawFileDisk.open(file, { readOnly: true });
    expect(() => new PartitionWindow(disk, 4096, 8192)).toThrow(expect.objectContaining({ code: 'E_OUT_OF_RANGE' }));
    disk.close();
  });
});
