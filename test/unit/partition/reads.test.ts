import { describe, expect, it } from 'vitest';
import { readTable } from '../../../src/partition/table.js';
import type { ReadRequest } from '../../../src/partition/source.js';
import { articleLikeDos, entry, gptImage } from './build.js';

/** Drives the sans-I/O reader over `image`, recording every read it asks for. */
function recordReads(image: Uint8Array): ReadRequest[] {
  const requests: ReadRequest[] = [];
  const reader = readTable(BigInt(image.length));
  let step = reader.next();
  while (!step.done) {
    requests.push(step.value);
    const start = Number(step.value.offset);
    step = reader.next(image.slice(start, start + step.value.length));
  }
  return requests;
}

describe('table readers read only the table sectors', () => {
  it('reads the MBR and one sector per EBR for a dos disk', () => {
    const reads = recordReads(articleLikeDos());
    expect(reads.map((r) => [r.offset, r.length])).toEqual([
      [0n, 512],
      [2000n * 512n, 512],
      [2600n * 512n, 512],
      [3100n * 512n, 512],
    ]);
  });

  it('reads the protective MBR, both headers and both entry arrays for a GPT disk', () => {
    const image = gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [entry(1, 40n, 100n)] }, 4096);
    const reads = recordReads(image);
    const total = reads.reduce((sum, r) => sum + r.length, 0);
    expect(total).toBeLessThanOrEqual(512 + 8 + 2 * (512 + 128 * 128));
    expect(reads.map((r) => r.offset)).toEqual([0n, 512n, 512n, 1024n, 4095n * 512n, 4063n * 512n]);
  });
});
