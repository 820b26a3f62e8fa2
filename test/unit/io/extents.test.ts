import { describe, expect, it } from 'vitest';
import { alignExtents, clipExtents, extentBytes, normalizeExtents } from '../../../src/io/extents.js';

describe('extents', () => {
  it('sorts, merges overlapping and touching ranges and drops empty ones', () => {
    expect(normalizeExtents([{ start: 10, length: 5 }, { start: 0, length: 10 }, { start: 30, length: 0 }, { start: 12, length: 10 }, { start: 40, length: 1 }])).toEqual([
      { start: 0, length: 22 },
      { start: 40, length: 1 },
    ]);
  });

  it('clips ranges to [0, length)', () => {
    expect(clipExtents([{ start: -5, length: 10 }, { start: 90, length: 50 }, { start: 200, length: 1 }], 100)).toEqual([
      { start: 0, length: 5 },
      { start: 90, length: 10 },
    ]);
  });

  it('rounds ranges outwards to the alignment and merges the result', () => {
    expect(alignExtents([{ start: 1000, length: 100 }, { start: 4097, length: 1 }], 4096)).toEqual([{ start: 0, length: 8192 }]);
  });

  it('counts covered bytes once', () => {
    expect(extentBytes([{ start: 0, length: 10 }, { start: 5, length: 10 }])).toBe(15);
  });
});
