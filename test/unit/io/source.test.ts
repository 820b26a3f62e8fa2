import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { libc } from '../../../src/disk/libc.js';
import { DIRECT_ALIGN, ReadLane, SourceReader } from '../../../src/io/source.js';
import { pattern } from '../../helpers/qcow2.js';
import { tempDir } from '../../helpers/tmp.js';

describe('SourceReader lanes', () => {
  it('start at an address O_DIRECT accepts, so no read is refused and retried', () => {
    const sys = libc();
    expect(sys, 'koffi loads libc on this host').toBeDefined();
    for (const span of [4096, 2 * 1024 * 1024 + 8192, 4 * 1024 * 1024]) {
      const lane = new ReadLane(span);
      expect(sys!.address(lane.buffer) % BigInt(DIRECT_ALIGN)).toBe(0n);
      expect(lane.buffer.length).toBe(span);
    }
  });

  it('reads unaligned ranges of a file byte for byte through the aligned lanes', async () => {
    const path = join(await tempDir('source-'), 'in.bin');
    const bytes = pattern(3 * 1024 * 1024 + 123, 5);
    writeFileSync(path, bytes);
    const reader = SourceReader.open(path, 1024 * 1024);
    try {
      const lane = reader.createLane();
      for (const [at, length] of [[0, 4096], [777, 1024 * 1024], [3 * 1024 * 1024 - 5, 1024]] as const) {
        const got = await reader.read(lane, at, length);
        expect(Buffer.compare(got, Buffer.from(bytes.subarray(at, Math.min(bytes.length, at + length))))).toBe(0);
      }
    } finally {
      reader.close();
    }
  });

  it('reads aligned ranges straight into an aligned buffer, short at the end of the file, and declines unaligned ones', async () => {
    const path = join(await tempDir('source-'), 'in.bin');
    const bytes = pattern(3 * 4096 + 100, 9);
    writeFileSync(path, bytes);
    const reader = SourceReader.open(path, 64 * 1024);
    try {
      expect(reader.direct, 'O_DIRECT on the test directory').toBe(true);
      const lane = new ReadLane(8 * 4096);
      expect(lane.aligned).toBe(true);
      const target = lane.buffer.subarray(0, 2 * 4096);
      expect(await reader.readDirect(target, 4096)).toBe(2 * 4096);
      expect(Buffer.compare(target, Buffer.from(bytes.subarray(4096, 3 * 4096)))).toBe(0);
      const tail = lane.buffer.subarray(0, 2 * 4096);
      expect(await reader.readDirect(tail, 2 * 4096)).toBe(4096 + 100);
      expect(Buffer.compare(tail.subarray(0, 4196), Buffer.from(bytes.subarray(2 * 4096)))).toBe(0);
      expect(await reader.readDirect(lane.buffer.subarray(0, 4096), 512)).toBeUndefined();
      expect(await reader.readDirect(lane.buffer.subarray(0, 1000), 0)).toBeUndefined();
    } finally {
      reader.close();
    }
  });
});
