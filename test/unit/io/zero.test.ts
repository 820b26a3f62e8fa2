import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { dataRuns, isAllZero } from '../../../src/io/zero.js';

describe('isAllZero', () => {
  it('accepts empty and all-zero ranges of any length, including beyond the 1 MiB compare buffer', () => {
    expect(isAllZero(new Uint8Array(0))).toBe(true);
    expect(isAllZero(new Uint8Array(3 << 20))).toBe(true);
  });

  it('finds a single non-zero byte anywhere, also past the first megabyte', () => {
    for (const at of [0, 1, 4095, (1 << 20) - 1, 1 << 20, (3 << 20) - 1]) {
      const bytes = new Uint8Array(3 << 20);
      bytes[at] = 1;
      expect(isAllZero(bytes), `byte ${at}`).toBe(false);
    }
  });

  it('only looks inside the given range', () => {
    const bytes = new Uint8Array(100);
    bytes[10] = 7;
    expect(isAllZero(bytes, 11, 100)).toBe(true);
    expect(isAllZero(bytes, 0, 10)).toBe(true);
    expect(isAllZero(bytes, 10, 11)).toBe(false);
  });

  it('rejects a range outside the buffer', () => {
    expect(() => isAllZero(new Uint8Array(4), 0, 5)).toThrow(RangeError);
  });

  test.prop([fc.uint8Array({ maxLength: 20000 })])('agrees with a byte loop', (bytes) => {
    expect(isAllZero(bytes)).toBe(bytes.every((b) => b === 0));
  });
});

describe('dataRuns', () => {
  it('returns no runs for a zero buffer and one run for a full one', () => {
    expect(dataRuns(new Uint8Array(16384))).toEqual([]);
    expect(dataRuns(new Uint8Array(16384).fill(1))).toEqual([{ start: 0, length: 16384 }]);
  });

  it('splits data at zero 4 KiB blocks and keeps a short last block', () => {
    const bytes = new Uint8Array(4096 * 4 + 100);
    bytes[5] = 1; // block 0
    bytes[4096 * 2 + 9] = 1; // block 2
    bytes[4096 * 4 + 99] = 1; // short tail
    expect(dataRuns(bytes)).toEqual([
      { start: 0, length: 4096 },
      { start: 8192, length: 4096 },
      { start: 16384, length: 100 },
    ]);
  });

  test.prop([fc.uint8Array({ maxLength: 40000 }).map((b) => b.map((x) => (x < 200 ? 0 : x))), fc.constantFrom(512, 4096, 1000)])(
    'runs cover exactly the non-zero blocks (model: per-block check)',
    (bytes, block) => {
      const runs = dataRuns(bytes, bytes.length, block);
      const covered = new Uint8Array(bytes.length);
      for (const r of runs) covered.fill(1, r.start, r.start + r.length);
      for (let pos = 0; pos < bytes.length; pos += block) {
        const end = Math.min(bytes.length, pos + block);
        const hasData = bytes.subarray(pos, end).some((b) => b !== 0);
        expect(covered[pos]).toBe(hasData ? 1 : 0);
      }
    },
  );

  test.prop([fc.uint8Array({ maxLength: 20000 }).map((b) => b.map((x) => (x < 230 ? 0 : x))), fc.constantFrom(512, 4096), fc.nat(10000)])(
    'with a phase, blocks follow the output grid: each output block is wholly in a run or wholly out',
    (bytes, block, phase) => {
      const covered = new Uint8Array(bytes.length);
      for (const r of dataRuns(bytes, bytes.length, block, phase)) covered.fill(1, r.start, r.start + r.length);
      // Output block k covers buffer positions [k*block - phase, (k+1)*block - phase).
      for (let k = Math.floor(phase / block); k * block - phase < bytes.length; k++) {
        const start = Math.max(0, k * block - phase);
        const end = Math.min(bytes.length, (k + 1) * block - phase);
        if (end <= start) continue;
        const hasData = bytes.subarray(start, end).some((b) => b !== 0);
        for (let i = start; i < end; i++) expect(covered[i]).toBe(hasData ? 1 : 0);
      }
    },
  );
});
