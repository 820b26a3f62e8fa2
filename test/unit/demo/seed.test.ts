import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { seedLayout } from '../../../src/demo/seed.js';
import { writePartitionTable } from '../../../src/partition/index.js';
import { requireTool } from '../../helpers/oracle.js';
import { tempDir } from '../../helpers/tmp.js';

const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;

describe('the demo seed layout', () => {
  it("is the article's layout as sfdisk reads it: bootable p1 (83) at 2048, an extended p2 with a logical swap p5", async () => {
    await requireTool('sfdisk', 'fdisk');
    const dir = await tempDir();
    const disk = join(dir, 'seed.img');
    const seed = seedLayout(64 * 1024 * 1024);
    await writeFile(disk, '');
    await truncate(disk, seed.diskBytes);
    await writePartitionTable(disk, seed.script);
    const json = JSON.parse((await execa('sfdisk', ['--json', disk], { env: { PATH } })).stdout) as { partitiontable: { id: string; partitions: { node: string; start: number; size: number; type: string; bootable?: boolean }[] } };
    expect(json.partitiontable.id).toBe('0x20130b0b');
    expect(json.partitiontable.partitions).toEqual([
      { node: `${disk}1`, start: 2048, size: 131072, type: '83', bootable: true },
      { node: `${disk}2`, start: 133120, size: 34816, type: '5' },
      { node: `${disk}5`, start: 135168, size: 32768, type: '82' },
    ]);
    expect(seed.rootOffset).toBe(2048 * 512);
    expect(seed.swapOffset).toBe(135168 * 512);
    expect(seed.diskBytes).toBe((133120 + 34816) * 512);
  });

  it('refuses sizes that are not whole MiB', () => {
    expect(() => seedLayout(1000)).toThrow(/multiple of 1 MiB/);
    expect(() => seedLayout(1024 * 1024, 0)).toThrow(/swap size/);
  });
});
