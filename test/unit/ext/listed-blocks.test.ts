import { describe, expect, it } from 'vitest';
import { listedDataBlocks } from '../../../src/ext/with-filesystem.js';

/** What debugfs `blocks` prints for a block-mapped file of `count` blocks laid out from block 1000. */
function listing(count: number, blockSize: number): { text: string; data: number[] } {
  const per = blockSize / 4;
  const all: number[] = [];
  const data: number[] = [];
  let next = 1000;
  let left = count;
  const take = (n: number): void => {
    for (let k = 0; k < n; k += 1) {
      data.push(next);
      all.push(next++);
    }
    left -= n;
  };
  const mapped = (depth: number): void => {
    all.push(next++); // the mapping block comes before what it maps
    for (let k = 0; k < per && left > 0; k += 1) {
      if (depth === 1) {
        take(Math.min(per, left));
        break;
      }
      mapped(depth - 1);
    }
  };
  take(Math.min(12, left));
  for (let depth = 1; depth <= 3 && left > 0; depth += 1) mapped(depth);
  return { text: `debugfs: blocks "/f"\n${all.join(' ')}\n`, data };
}

const expand = (extents: { logical: number; physical: number; length: number }[]): number[] => extents.flatMap((e) => Array.from({ length: e.length }, (_, i) => e.physical + i));

describe('listedDataBlocks (debugfs `blocks` of a block-mapped file)', () => {
  it.each([
    [5, 4096],
    [12, 4096],
    [13, 4096],
    [25600, 4096],
    [5 * 1024 + 1, 1024],
    [12 + 256 + 256 * 256 + 3, 1024],
  ])('keeps exactly the data blocks of a %i-block file with %i-byte blocks, in logical order', (count, blockSize) => {
    const { text, data } = listing(count, blockSize);
    const extents = listedDataBlocks(text, '"/f"', count, blockSize)!;
    expect(expand(extents)).toEqual(data);
    expect(extents[0]!.logical).toBe(0);
  });

  it('refuses a listing whose length does not match the file', () => {
    const { text } = listing(300, 4096);
    expect(listedDataBlocks(text, '"/f"', 299, 4096)).toBeUndefined();
    expect(listedDataBlocks('debugfs: blocks "/g"\n1 2 3\n', '"/f"', 3, 4096)).toBeUndefined();
  });
});
