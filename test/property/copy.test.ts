import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyRange } from '../../src/io/copy.js';
import { tempDir } from '../helpers/tmp.js';

const dir = await tempDir('diskwright-copy-prop-');
let counter = 0;

/** Source bytes with long zero runs (holes-to-be) and data islands, up to 96 KiB. */
const sourceBytes = fc
  .array(fc.record({ zeros: fc.integer({ min: 0, max: 20000 }), data: fc.uint8Array({ minLength: 0, maxLength: 6000 }) }), { maxLength: 8 })
  .map((parts) => Buffer.concat(parts.flatMap((p) => [Buffer.alloc(p.zeros), Buffer.from(p.data)])));

/** Hostile chunk patterns: tiny, odd, block-straddling sizes cycled in any order. */
const chunkPattern = fc.array(fc.oneof(fc.integer({ min: 1, max: 17 }), fc.integer({ min: 1, max: 70000 }), fc.constantFrom(511, 4095, 4097, 65536)), { minLength: 1, maxLength: 6 });

describe('copyRange output', () => {
  test.prop([sourceBytes, fc.nat(), fc.nat(), chunkPattern, fc.boolean(), fc.integer({ min: 1, max: 5 })], { numRuns: 60 })(
    'is the source slice, whatever the chunk sizes, read concurrency and read mode',
    async (bytes, a, b, chunks, direct, concurrency) => {
      const offset = bytes.length === 0 ? 0 : a % (bytes.length + 1);
      const length = (bytes.length - offset) === 0 ? 0 : b % (bytes.length - offset + 1);
      const id = counter++;
      const src = join(dir, `src-${id}`);
      const out = join(dir, `out-${id}`);
      await writeFile(src, bytes);
      try {
        const summary = await copyRange(src, out, { offset, length, chunkSize: chunks, direct, concurrency });
        const copied = await readFile(out);
        expect(copied.equals(bytes.subarray(offset, offset + length))).toBe(true);
        // dataBytes counts whole 4 KiB output blocks holding data: never less than the non-zero bytes.
        const nonZero = bytes.subarray(offset, offset + length).reduce((n, x) => n + (x !== 0 ? 1 : 0), 0);
        expect(summary.dataBytes).toBeGreaterThanOrEqual(nonZero);
        expect(summary.dataBytes).toBeLessThanOrEqual(length);
      } finally {
        await rm(src, { force: true });
        await rm(out, { force: true });
      }
    },
  );
});

