import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
// @ts-expect-error — plain JS fixture script without type declarations
import { makeSeed, seedLayout } from '../../fixtures/make-seed.mjs';
import { extractPartition } from '../../src/io/extract.js';
import { readSuperblock } from '../../src/extmeta/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
let dir: string;

beforeAll(async () => {
  for (const tool of ['sfdisk', 'mke2fs', 'e2fsck', 'cmp']) await requireTool(tool, tool === 'sfdisk' ? 'fdisk' : tool === 'cmp' ? 'diffutils' : 'e2fsprogs');
  dir = await tempDir('diskwright-seed-');
});

describe('the seed fixture', () => {
  it('uses the article layout for the 8 GiB disk', () => {
    expect(seedLayout(16777216)).toMatchObject({ p1Start: 2048, p1Sectors: 15986688, extStart: 15990782, extSectors: 784386, logicalStart: 15990784, logicalSectors: 784384 });
  });

  it('small variant: sfdisk sees p1 83 bootable at 2048, an extended partition and a logical swap; ext3 is clean; extract equals dd', async () => {
    const image = join(dir, 'seed.img');
    await makeSeed({ out: image, dataSize: 24 * 2 ** 20, diskSize: 256 * 2 ** 20, force: true });
    const table = JSON.parse((await execa('sfdisk', ['--json', image], { env })).stdout).partitiontable;
    expect(table.label).toBe('dos');
    expect(table.partitions.map((p: { type: string }) => p.type)).toEqual(['83', '5', '82']);
    expect(table.partitions[0]).toMatchObject({ start: 2048, bootable: true });
    const p1 = table.partitions[0];
    const sb = await readSuperblock(image, { offset: p1.start * 512 });
    expect(sb.kind).toBe('ext3');
    expect(Number(sb.blocksCount) * sb.blockSize).toBe(p1.size * 512);
    const out = join(dir, 'p1.img');
    await extractPartition(image, 1, out);
    expect((await execa('e2fsck', ['-fn', out], { env, reject: false })).exitCode).toBe(0);
    const ref = join(dir, 'p1.dd');
    await execa('dd', [`if=${image}`, `of=${ref}`, 'bs=512', `skip=${p1.start}`, `count=${p1.size}`, 'status=none']);
    expect((await execa('cmp', [ref, out], { reject: false })).exitCode).toBe(0);
    expect((await stat(out)).size).toBe(p1.size * 512);
  });
});
