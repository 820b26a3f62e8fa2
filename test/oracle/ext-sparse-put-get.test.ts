import { closeSync, ftruncateSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { copyFile, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem } from '../../src/ext/index.js';
import { lastCommit } from '../../src/ext/with-filesystem.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV, hostFsck, hostStat, makeExtImage } from '../unit/ext/ext-images.js';

// Sparse sources and files of 4 GiB and more on the large-put path (dw_alloc + in-place data):
// holes of the source are found with SEEK_DATA/SEEK_HOLE and never allocated, sizes ≥ 4 GiB are
// set in two halves (the WASM debugfs parses field values as 32-bit), and `fs get` writes holes
// as holes. Oracles: host debugfs stat/dump/write, host e2fsck -fn, st_blocks.

const GIB = 1024 ** 3;
let dir: string;
beforeAll(async () => {
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir();
});

/** A sparse file of `size` bytes holding `pieces` (non-zero bytes) at their offsets; the rest are holes. */
function sparseFile(path: string, size: number, pieces: readonly (readonly [number, Buffer])[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const [at, bytes] of pieces) writeSync(fd, bytes, 0, bytes.length, at);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i + 4 <= length; i += 4) bytes.writeUInt32LE(((i + 1) * 2654435761 + seed) >>> 0 || 1, i);
  return bytes;
}

/** Host debugfs `stat` of `path`: size, Blockcount (512-byte sectors) and the block/extent list. */
async function hostBlocks(image: string, path: string): Promise<{ size: number; sectors: number; map: string }> {
  const { stdout } = await execa('debugfs', ['-R', `stat ${path}`, image], { env: SBIN_ENV });
  const size = Number(/Size: (\d+)/.exec(stdout)![1]);
  const sectors = Number(/Blockcount: (\d+)/.exec(stdout)![1]);
  const map = stdout.slice(stdout.search(/^(EXTENTS|BLOCKS):/m));
  return { size, sectors, map };
}

/** The physical block host debugfs `stat` maps logical block `logical` to (`(A-B):C-D` / `(A):C` entries). */
function physicalOf(map: string, logical: number): number {
  for (const m of map.matchAll(/\((\d+)(?:-(\d+))?\):(\d+)/g)) {
    const [first, last, physical] = [Number(m[1]), Number(m[2] ?? m[1]), Number(m[3])];
    if (logical >= first && logical <= last) return physical + (logical - first);
  }
  throw new Error(`block ${logical} is not mapped: ${map}`);
}

function readAt(path: string, position: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const bytes = Buffer.alloc(length);
    readSync(fd, bytes, 0, length, position);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

describe('fs put of sparse and ≥ 4 GiB files', () => {
  it.each(['ext4', 'ext3'] as const)('puts a sparse 4.5 GiB file into %s without writing its holes: size, blocks and bytes as host debugfs sees them', { timeout: 120_000 }, async (type) => {
    const src = join(dir, `huge-${type}.bin`);
    const size = 4.5 * GIB;
    const head = pattern(64 * 1024, 1);
    const tail = Buffer.from('past 4 GiB\n');
    const tailAt = 4 * GIB + 8192 + 100;
    sparseFile(src, size, [
      [0, head],
      [tailAt, tail],
    ]);
    const image = join(dir, `huge-${type}.img`);
    await makeExtImage(image, type, '6G');
    const before = statSync(image).blocks;
    const started = Date.now();
    await withFilesystem(image, { write: true }, (fs) => fs.putFile(src, '/huge.bin', { mode: 0o640 }));
    // No real bytes: far less than the 4.5 GiB a filled file would take to write.
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(lastCommit).toMatchObject({ bulk: true, directPuts: 1 });
    expect(lastCommit!.inPlaceBytes).toBeLessThan(1024 * 1024);
    expect((statSync(image).blocks - before) * 512).toBeLessThan(8 * 1024 * 1024);
    expect((await hostFsck(image)).exitCode).toBe(0);
    expect(await hostStat(image, '/huge.bin')).toMatchObject({ size, mode: 0o640 });
    const blocks = await hostBlocks(image, '/huge.bin');
    const tailBlock = Math.floor(tailAt / 4096);
    if (type === 'ext4') {
      // Extents: 16 data blocks of the head, 1 of the tail, plus at most a few extent tree blocks.
      expect(blocks.sectors / 8).toBeGreaterThanOrEqual(17);
      expect(blocks.sectors / 8).toBeLessThanOrEqual(17 + 4);
      expect(blocks.map).toMatch(/\(0-15\)/);
      expect(blocks.map).toMatch(new RegExp(`\\(${tailBlock}\\)`));
    } else {
      // Block maps keep the blocks below the last data block (punched in the image: no space, zeros).
      expect(blocks.sectors / 8).toBeGreaterThan(tailBlock);
      expect(blocks.map).toMatch(new RegExp(`-${tailBlock}\\):`));
    }
    // The data blocks as host debugfs maps them hold the source's bytes (a dump would read 4.5 GiB).
    for (const logical of [0, 15, tailBlock]) {
      const physical = physicalOf(blocks.map, logical);
      expect(readAt(image, physical * 4096, 4096).equals(readAt(src, logical * 4096, 4096))).toBe(true);
    }
    await Promise.all([rm(image), rm(src)]);
  });

  it.each(['ext4', 'ext3'] as const)('puts a source with holes inside into %s byte for byte, as sparse as host debugfs write makes it on ext4', { timeout: 120_000 }, async (type) => {
    const src = join(dir, `holes-${type}.bin`);
    // Holes at the start, between data runs (one not block-aligned) and at the end.
    const size = 24 * 1024 * 1024 + 123;
    sparseFile(src, size, [
      [3 * 1024 * 1024, pattern(1024 * 1024, 2)],
      [9 * 1024 * 1024 + 777, pattern(5 * 1024 * 1024, 3)],
      [20 * 1024 * 1024, pattern(4096 * 3, 4)],
    ]);
    const ours = join(dir, `holes-${type}.img`);
    const host = join(dir, `holes-${type}-host.img`);
    await makeExtImage(ours, type, '128M', ['-b', '4096']);
    await copyFile(ours, host);
    await withFilesystem(ours, { write: true }, (fs) => fs.putFile(src, '/h.bin'));
    await execa('debugfs', ['-w', '-R', `write ${src} /h.bin`, host], { env: SBIN_ENV });
    expect((await hostFsck(ours)).exitCode).toBe(0);
    const [a, b] = [await hostBlocks(ours, '/h.bin'), await hostBlocks(host, '/h.bin')];
    expect(a.size).toBe(size);
    // ext4 (extents): the same blocks as host debugfs; ext3 (block maps): holes below the last
    // data block stay allocated (zeros), none past it.
    if (type === 'ext4') expect(a.sectors).toBe(b.sectors);
    else expect(a.sectors).toBeGreaterThan(b.sectors);
    if (type === 'ext3') expect(a.sectors / 8).toBeLessThan(Math.ceil(size / 4096) + 8);
    const dumped = join(dir, `holes-${type}.out`);
    await execa('debugfs', ['-R', `dump /h.bin ${dumped}`, ours], { env: SBIN_ENV });
    expect((await readFile(dumped)).equals(await readFile(src))).toBe(true);
    await Promise.all([rm(dumped), rm(ours), rm(host), rm(src)]);
  });

  it('puts a 5 GiB file of holes only without allocating a single block', { timeout: 60_000 }, async () => {
    const src = join(dir, 'empty-huge.bin');
    await writeFile(src, '');
    await truncate(src, 5 * GIB);
    const image = join(dir, 'empty-huge.img');
    await makeExtImage(image, 'ext4', '64M');
    await withFilesystem(image, { write: true }, (fs) => fs.putFile(src, '/holes'));
    expect((await hostFsck(image)).exitCode).toBe(0);
    expect(await hostBlocks(image, '/holes')).toMatchObject({ size: 5 * GIB, sectors: 0 });
    await Promise.all([rm(image), rm(src)]);
  });
});

describe('fs get of a sparse file', () => {
  it('writes the holes of the file in the image as holes: same bytes, st_blocks no more than the file has in the image', { timeout: 120_000 }, async () => {
    const src = join(dir, 'get-src.bin');
    const size = 40 * 1024 * 1024 + 5;
    sparseFile(src, size, [
      [4096 * 3, pattern(8192, 5)],
      [17 * 1024 * 1024 + 13, pattern(300_000, 6)],
      [size - 5, Buffer.from('tail!')],
    ]);
    const image = join(dir, 'get.img');
    await makeExtImage(image, 'ext4', '128M', ['-b', '4096']);
    // Host debugfs writes it sparse; diskwright reads it out.
    await execa('debugfs', ['-w', '-R', `write ${src} /sparse.bin`, image], { env: SBIN_ENV });
    const inImage = await hostBlocks(image, '/sparse.bin');
    const out = join(dir, 'got.bin');
    expect(await runInProcess(['fs', 'get', image, '/sparse.bin', out])).toMatchObject({ code: 0 });
    expect((await readFile(out)).equals(await readFile(src))).toBe(true);
    const outSectors = statSync(out).blocks;
    expect(outSectors).toBeLessThanOrEqual(inImage.sectors);
    // Without holes the copy would take 40 MiB.
    expect(outSectors * 512).toBeLessThan(1024 * 1024);
    await Promise.all([rm(out), rm(image), rm(src)]);
  });
});
