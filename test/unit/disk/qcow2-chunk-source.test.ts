import { execa } from 'execa';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openChunkSource } from '../../../src/disk/qcow2/chunk-source.js';
import { openImage } from '../../../src/disk/open.js';
import { PartitionWindow } from '../../../src/disk/window.js';
import { SourceReader } from '../../../src/io/source.js';
import { writeMixedRaw } from '../../helpers/qcow2.js';
import { tempDir } from '../../helpers/tmp.js';

const CHUNK = 1 << 20;

/** Every byte of `[offset, offset + length)` of the qcow2 through openChunkSource, chunk by chunk on two lanes. */
async function readThroughChunks(image: string, offset: number, length: number, direct?: boolean): Promise<Uint8Array> {
  const disk = openImage(image, { format: 'qcow2', readOnly: true });
  const out = new Uint8Array(length);
  try {
    const source = openChunkSource(offset === 0 ? disk : new PartitionWindow(disk, offset, length), CHUNK, 2, direct === undefined ? {} : { direct });
    try {
      for (let at = 0, lane = 0; at < length; at += CHUNK, lane ^= 1) {
        const chunk = { at, length: Math.min(CHUNK, length - at) };
        out.set(await source.read(chunk, lane), at);
      }
    } finally {
      source.close();
    }
  } finally {
    disk.close();
  }
  return out;
}

describe('the qcow2 chunk source', () => {
  afterEach(() => vi.restoreAllMocks());

  it('with direct: true, reads aligned data runs with O_DIRECT straight into the chunk buffer and the rest through a bounce lane, byte for byte as the raw disk', async () => {
    const dir = await tempDir('chunk-source-');
    const raw = join(dir, 'disk.raw');
    const size = 3 * CHUNK + 1536;
    const bytes = writeMixedRaw(raw, size);
    const direct = vi.spyOn(SourceReader.prototype, 'readDirect');
    const bounced = vi.spyOn(SourceReader.prototype, 'read');
    for (const clusterSize of [512, 65536]) {
      const image = join(dir, `disk-${clusterSize}.qcow2`);
      await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-o', `cluster_size=${clusterSize}`, raw, image]);
      // Offset 0 (aligned runs) and a partition at sector 63 (no run aligned in memory).
      for (const offset of [0, 63 * 512]) {
        direct.mockClear();
        bounced.mockClear();
        const got = await readThroughChunks(image, offset, size - offset, true);
        expect(Buffer.compare(got, bytes.subarray(offset)), `cluster ${clusterSize}, offset ${offset}`).toBe(0);
        const served = direct.mock.results.map((r) => r.value as Promise<number | undefined>);
        const directCount = (await Promise.all(served)).filter((n) => n !== undefined).length;
        if (clusterSize === 65536 && offset === 0) {
          expect(directCount, 'every 64 KiB run at an aligned offset is read directly').toBeGreaterThan(0);
          // The disk's last, partial cluster (1536 bytes) is not a whole number of pages: it is
          // read buffered, in place, not through a bounce lane.
          expect(bounced).not.toHaveBeenCalled();
        }
        if (offset !== 0) expect(directCount, 'nothing unaligned is read directly').toBe(0);
        // A run at an unaligned place in the chunk buffer goes through a bounce lane; one at an
        // aligned place that O_DIRECT cannot take (512-byte clusters) is read buffered in place.
        if (offset !== 0) expect(bounced).toHaveBeenCalled();
      }
    }
  });

  it('by default, reads aligned data runs through the page cache straight into the chunk buffer (no bounce copy), byte for byte as the raw disk', async () => {
    const dir = await tempDir('chunk-source-');
    const raw = join(dir, 'disk.raw');
    const size = 3 * CHUNK + 1536;
    const bytes = writeMixedRaw(raw, size);
    const image = join(dir, 'disk.qcow2');
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
    const direct = vi.spyOn(SourceReader.prototype, 'readDirect');
    const into = vi.spyOn(SourceReader.prototype, 'readInto');
    const bounced = vi.spyOn(SourceReader.prototype, 'read');
    const got = await readThroughChunks(image, 0, size);
    expect(Buffer.compare(got, bytes)).toBe(0);
    expect(into).toHaveBeenCalled();
    // readInto asks readDirect first; with no O_DIRECT descriptor it answers undefined every time.
    const served = await Promise.all(direct.mock.results.map((r) => r.value as Promise<number | undefined>));
    expect(served.filter((n) => n !== undefined)).toEqual([]);
    // Every run sits at an aligned place in its chunk buffer: none goes through a bounce lane.
    expect(bounced).not.toHaveBeenCalled();
    // A partition at sector 63: runs at unaligned places in the chunk buffer go through a bounce lane.
    const shifted = await readThroughChunks(image, 63 * 512, size - 63 * 512);
    expect(Buffer.compare(shifted, bytes.subarray(63 * 512))).toBe(0);
    expect(bounced).toHaveBeenCalled();
  });
});
