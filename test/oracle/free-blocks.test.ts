import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { freeBlockTest } from '../../src/ext/free-blocks.js';
import { readExtGeometry } from '../../src/ext/superblock.js';
import { withFilesystem } from '../../src/ext/index.js';
import { tempDir } from '../helpers/tmp.js';
import { makeExtImage, SBIN_ENV } from '../unit/ext/ext-images.js';

/** Free blocks as host dumpe2fs lists them ("Free blocks: 1-5, 9"), as a set of block numbers. */
async function hostFreeBlocks(image: string): Promise<{ free: Set<number>; listing: string }> {
  const { stdout } = await execa('dumpe2fs', [image], { env: SBIN_ENV });
  const free = new Set<number>();
  for (const match of stdout.matchAll(/^ {2}Free blocks: (.*)$/gm)) {
    for (const part of match[1]!.split(', ').filter(Boolean)) {
      const [a, b] = part.split('-').map(Number);
      for (let block = a!; block <= (b ?? a!); block += 1) free.add(block);
    }
  }
  return { free, listing: stdout };
}

describe('freeBlockTest (which blocks the committed filesystem leaves free; host dumpe2fs as oracle)', async () => {
  const dir = await tempDir();
  it.each([
    ['ext4 with flex_bg and never-initialized (BLOCK_UNINIT) groups', 'ext4', '96M', []],
    ['ext3 (block maps, 1 KiB blocks)', 'ext3', '48M', []],
    ['ext4 with meta_bg', 'ext4', '96M', ['-O', 'meta_bg,^resize_inode']],
    ['ext2 without sparse_super', 'ext2', '32M', ['-O', '^sparse_super,^resize_inode']],
  ] as const)('agrees with dumpe2fs block by block on %s after files were written', async (_name, type, size, extra) => {
    const image = join(dir, `${type}-${size}-${extra.length}.img`);
    await makeExtImage(image, type, size, [...extra]);
    await withFilesystem(image, { write: true }, async (fs) => {
      await fs.writeFile('/a', Buffer.alloc(300 * 1024, 1));
      await fs.mkdir('/d');
      await fs.writeFile('/d/b', 'small');
    });
    const { free, listing } = await hostFreeBlocks(image);
    if (type === 'ext4') expect(listing).toMatch(/\[.*BLOCK_UNINIT.*\]/);
    const geometry = await readExtGeometry(image, 0);
    const fd = openSync(image, 'r');
    try {
      const test = freeBlockTest((buffer, position) => readSync(fd, buffer, 0, buffer.length, position) === buffer.length, 0, geometry);
      const bs = geometry.blockSize;
      const disagree: number[] = [];
      for (let block = 0; block < Number(geometry.blocksCount); block += 1) if (test(block * bs, bs) !== free.has(block)) disagree.push(block);
      expect(disagree.slice(0, 10)).toEqual([]);
      // A range is free only when every block in it is.
      const usedBlock = [...Array(Number(geometry.blocksCount)).keys()].find((b) => b > 0 && !free.has(b) && free.has(b - 1))!;
      expect(test((usedBlock - 1) * bs, 2 * bs)).toBe(false);
      expect(test(Number(geometry.blocksCount) * bs, bs)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });
});
