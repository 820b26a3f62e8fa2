import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { alignExtents, clipExtents, coalesceExtents, extentBytes, intersectExtents, normalizeExtents, type Extent } from '../../../src/io/extents.js';

const extents = fc.array(fc.record({ start: fc.nat(200), length: fc.nat(40) }), { maxLength: 12 });
/** Model: the set of covered positions in [0, 256). */
const cover = (xs: readonly Extent[]): boolean[] => Array.from({ length: 256 }, (_, i) => xs.some((e) => e.start <= i && i < e.start + e.length));

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

  test.prop([extents, extents])('intersect covers exactly the positions both cover (model: position sets)', (a, b) => {
    const got = intersectExtents(a, b);
    const ca = cover(a);
    const cb = cover(b);
    expect(cover(got)).toEqual(ca.map((x, i) => x && cb[i]!));
    expect(got).toEqual(normalizeExtents(got));
  });

  test.prop([extents, fc.nat(20)])('coalesce only fills gaps of at most `gap` bytes and keeps every covered position', (a, gap) => {
    const got = coalesceExtents(a, gap);
    const before = cover(a);
    const after = cover(got);
    before.forEach((x, i) => x && expect(after[i]).toBe(true));
    for (let k = 1; k < got.length; k++) expect(got[k]!.start - (got[k - 1]!.start + got[k - 1]!.length)).toBeGreaterThan(gap);
    expect(extentBytes(got) - extentBytes(a)).toBeLessThanOrEqual(gap * Math.max(0, normalizeExtents(a).length - 1));
  });
});
