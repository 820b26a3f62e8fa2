import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runE2fsTool } from '../../../src/e2fs/run.js';
import { heapFor } from '../../../src/ext/with-filesystem.js';
import type { ExtGeometry } from '../../../src/ext/superblock.js';
import { tempDir } from '../../helpers/tmp.js';
import { makeExtImage } from './ext-images.js';

const geometry = (blocks: number, inodes: number): ExtGeometry => ({ blocksCount: BigInt(blocks), inodesCount: inodes }) as unknown as ExtGeometry;

describe('the heap of small tool runs', () => {
  it('starts at 16 MiB plus twice the bitmaps, and at most 128 MiB', () => {
    expect(heapFor(geometry(2_000_000, 500_000))).toBe(16 * 2 ** 20 + 1 * 2 ** 20);
    expect(heapFor(geometry(16_384, 4_096))).toBe(17 * 2 ** 20);
    expect(heapFor(geometry(2 ** 32, 2 ** 28))).toBe(128 * 2 ** 20);
  });

  it('gives the same answer from a 16 MiB heap as from the default one, growing where needed', async () => {
    const image = join(await tempDir(), 'heap.img');
    // 16 GiB of 1 KiB blocks: 2 MiB of block bitmap and ~0.8 MB of output from a 16 MiB heap.
    await makeExtImage(image, 'ext4', '16G', ['-b', '1024', '-E', 'nodiscard']);
    const small = await runE2fsTool('dumpe2fs', [image], { initialMemory: 16 * 2 ** 20 });
    const large = await runE2fsTool('dumpe2fs', [image]);
    expect(small.exitCode).toBe(0);
    expect(small.stdout).toBe(large.stdout);
    expect(small.stdout.length).toBeGreaterThan(500_000);
  }, 60_000);
});
