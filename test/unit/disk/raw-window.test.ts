import { describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
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
