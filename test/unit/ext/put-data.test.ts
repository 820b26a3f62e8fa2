import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocationPlan, choosePunches, MAX_PUNCHES, openPutSource, restrictToRanges, type BlockRange } from '../../../src/ext/put-data.js';
import { tempDir } from '../../helpers/tmp.js';

describe('the data side of a large putFile', async () => {
  const dir = await tempDir();

  it('finds the data blocks of a sparse source with SEEK_DATA/SEEK_HOLE (a block with any data byte is data)', () => {
    const path = join(dir, 'sparse.bin');
    const fd = openSync(path, 'w');
    writeSync(fd, Buffer.from('x'), 0, 1, 5 * 4096 + 4095);
    writeSync(fd, Buffer.alloc(3 * 4096, 1), 0, 3 * 4096, 40 * 4096);
    ftruncateSync(fd, 100 * 4096 + 10);
    closeSync(fd);
    const source = openPutSource(path, 100 * 4096 + 10, 4096);
    try {
      // The host filesystem reports data in its own blocks (4 KiB on ext4/tmpfs here).
      expect(source.dataBlocks).toEqual([
        { start: 5, count: 1 },
        { start: 40, count: 3 },
      ]);
    } finally {
      source.close();
      source.close();
    }
    expect(allocationPlan(source.dataBlocks)).toEqual({ allocate: 43, holes: [{ start: 0, count: 5 }, { start: 6, count: 34 }] });
    expect(allocationPlan([])).toEqual({ allocate: 0, holes: [] });
  });

  it('restricts allocated extents to block ranges exactly, in logical order (a simple model: block by block)', () => {
    const ranges = fc.array(fc.tuple(fc.nat(20), fc.integer({ min: 1, max: 15 })), { maxLength: 8 }).map((pairs) => {
      const out: BlockRange[] = [];
      let at = 0;
      for (const [gap, count] of pairs) {
        out.push({ start: at + gap + (out.length > 0 ? 1 : 0), count });
        at = out[out.length - 1]!.start + count;
      }
      return out;
    });
    fc.assert(
      fc.property(ranges, fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 10 }), (data, lengths) => {
        let logical = 0;
        const extents = lengths.map((length, i) => {
          const e = { logical, length, physical: 1000 * (i + 1) };
          logical += length;
          return e;
        });
        const physical = new Map<number, number>();
        for (const e of extents) for (let i = 0; i < e.length; i += 1) physical.set(e.logical + i, e.physical + i);
        const expected = new Map<number, number>();
        for (const r of data) for (let b = r.start; b < r.start + r.count; b += 1) if (physical.has(b)) expected.set(b, physical.get(b)!);
        const got = new Map<number, number>();
        let last = -1;
        for (const e of restrictToRanges(extents, data)) {
          expect(e.logical).toBeGreaterThan(last);
          for (let i = 0; i < e.length; i += 1) got.set(e.logical + i, e.physical + i);
          last = e.logical + e.length - 1;
        }
        expect(got).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});

describe('choosePunches', () => {
  it('punches every hole up to the limit, beyond it the largest ones, and zeroes the rest (each hole exactly once, logical order)', () => {
    const few = [{ start: 0, count: 3 }, { start: 10, count: 1 }];
    expect(choosePunches(few)).toEqual({ punch: few, zero: [] });
    const many = Array.from({ length: MAX_PUNCHES + 10 }, (_, i) => ({ start: i * 10, count: i < 10 ? 1 : 2 }));
    const { punch, zero } = choosePunches(many);
    expect(punch).toHaveLength(MAX_PUNCHES);
    expect(zero).toEqual(many.slice(0, 10));
    expect(punch.every((h, i) => i === 0 || h.start > punch[i - 1]!.start)).toBe(true);
  });
});
