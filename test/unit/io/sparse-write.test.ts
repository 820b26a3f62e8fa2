import { readFile, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SparseFileWriter } from '../../../src/io/sparse-write.js';
import { tempDir } from '../../helpers/tmp.js';

describe('SparseFileWriter', async () => {
  const dir = await tempDir();

  it('writes the same bytes whatever the chunking, with all-zero 4 KiB blocks left as holes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 20_000 }), fc.boolean()), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 6 }),
        async (runs, chunking) => {
          const content = Buffer.concat(runs.map(([n, data], i) => (data ? Buffer.alloc(n, (i % 250) + 1) : Buffer.alloc(n))));
          const path = join(dir, 'out.bin');
          const handle = await open(path, 'w');
          try {
            const writer = new SparseFileWriter(handle.fd);
            for (let at = 0, i = 0; at < content.length; i += 1) {
              const n = Math.min(chunking[i % chunking.length]!, content.length - at);
              await writer.write(content.subarray(at, at + n));
              at += n;
            }
            await writer.finish();
            expect(writer.bytes).toBe(content.length);
          } finally {
            await handle.close();
          }
          expect((await readFile(path)).equals(content)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('makes a file of zeros a hole only', async () => {
    const path = join(dir, 'zeros.bin');
    const handle = await open(path, 'w');
    const writer = new SparseFileWriter(handle.fd);
    for (let i = 0; i < 16; i += 1) await writer.write(Buffer.alloc(1 << 20));
    await writer.finish();
    await handle.close();
    const s = await stat(path);
    expect(s.size).toBe(16 << 20);
    expect(s.blocks).toBe(0);
  });
});
