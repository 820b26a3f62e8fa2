import type { FileHandle } from 'node:fs/promises';
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { parsePartitionTable } from '../../src/partition/index.js';
import { runOnFile } from '../../src/partition/source.js';
import { readTable } from '../../src/partition/table.js';
import { articleLikeDos, entry, gptImage } from '../unit/partition/build.js';

/** A FileHandle stand-in whose reads return at most a pseudo-random chunk each time (short reads). */
function chunkyHandle(image: Uint8Array, chunks: readonly number[]): FileHandle {
  let call = 0;
  const read = async (buffer: Uint8Array, offset: number, length: number, position: number) => {
    const chunk = chunks[call++ % chunks.length]!;
    const n = Math.max(0, Math.min(length, chunk, image.length - position));
    buffer.set(image.subarray(position, position + n), offset);
    return { bytesRead: n, buffer };
  };
  return { read } as unknown as FileHandle;
}

const IMAGES = {
  dos: articleLikeDos(),
  gpt: gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [entry(1, 40n, 100n, { name: 'x' }), entry(9, 200n, 300n)] }, 4096),
};

describe('file reads in hostile chunk patterns', () => {
  test.prop([fc.constantFrom('dos', 'gpt'), fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 })], { numRuns: 60 })(
    'short positional reads give the same table as one in-memory parse',
    async (label, chunks) => {
      const image = IMAGES[label as 'dos' | 'gpt'];
      const table = await runOnFile(readTable(BigInt(image.length)), chunkyHandle(image, chunks), 'x.img');
      expect(table).toEqual(parsePartitionTable(image));
    },
  );
});
