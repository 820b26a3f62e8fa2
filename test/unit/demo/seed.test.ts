import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { placeImage, seedLayout, writeSeedTables } from '../../../src/demo/seed.js';
import { requireTool } from '../../helpers/oracle.js';
import { tempDir } from '../../helpers/tmp.js';

const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;

describe('the demo seed disk', () => {
  it('has the article\'s layout as sfdisk reads it: bootable p1 (83) at 2048, an extended p2 with a logical swap p5', async () => {
    await requireTool('sfdisk', 'fdisk');
    const dir = await tempDir();
    const disk = join(dir, 'seed.img');
    const seed = seedLayout(64 * 1024 * 1024);
    await writeFile(disk, '');
    await truncate(disk, seed.diskBytes);
    await writeSeedTables(disk, seed);
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

  it('writes a swap signature blkid recognises into the logical partition', async () => {
    await requireTool('blkid', 'util-linux');
    const dir = await tempDir();
    const disk = join(dir, 'seed.img');
    const seed = seedLayout(4 * 1024 * 1024, 4 * 1024 * 1024);
    await writeFile(disk, '');
    await truncate(disk, seed.diskBytes);
    await writeSeedTables(disk, seed);
    const probe = await execa('blkid', ['-p', '-O', String(seed.swapOffset), '-o', 'export', disk], { env: { PATH }, reject: false });
    expect(probe.stdout).toMatch(/^TYPE=swap$/m);
  });

  it('refuses sizes that are not whole MiB', () => {
    expect(() => seedLayout(1000)).toThrow(/multiple of 1 MiB/);
    expect(() => seedLayout(1024 * 1024, 0)).toThrow(/swap size/);
  });
});

describe('placeImage', () => {
  it('copies a filesystem image into the disk at the offset byte for byte, leaving zero blocks as holes', async () => {
    const dir = await tempDir();
    const disk = join(dir, 'disk.img');
    const source = join(dir, 'fs.img');
    const data = Buffer.alloc(3 * 1024 * 1024);
    data.fill(0xab, 0, 4096);
    data.fill(0xcd, 2 * 1024 * 1024 + 100, 2 * 1024 * 1024 + 200);
    await writeFile(source, data);
    await writeFile(disk, '');
    await truncate(disk, 8 * 1024 * 1024);
    await placeImage(source, disk, 1024 * 1024);
    const written = await readFile(disk);
    expect(written.subarray(1024 * 1024, 4 * 1024 * 1024).equals(data)).toBe(true);
    expect(written.subarray(0, 1024 * 1024).every((b) => b === 0)).toBe(true);
    expect((await stat(disk)).blocks * 512).toBeLessThan(64 * 1024);
  });

  it('refuses an image that does not fit in the partition or the disk', async () => {
    const dir = await tempDir();
    const disk = join(dir, 'disk.img');
    const source = join(dir, 'fs.img');
    await writeFile(source, Buffer.alloc(2 * 1024 * 1024, 1));
    await writeFile(disk, '');
    await truncate(disk, 3 * 1024 * 1024);
    await expect(placeImage(source, disk, 2 * 1024 * 1024)).rejects.toMatchObject({ code: 'E_OUT_OF_RANGE' });
    await expect(placeImage(source, disk, 0, { maxBytes: 1024 * 1024 })).rejects.toMatchObject({ code: 'E_OUT_OF_RANGE' });
  });
});
