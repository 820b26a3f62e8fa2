import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFilesystem, closeE2fsPool, fsckArgs, type CheckMode } from '../../src/e2fs/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { FAKE_TIME, FIXED_SEED, FIXED_UUID, garbage, host, pokeBytes, sparseFile, twinCopies } from '../unit/e2fs/host.js';

// The WASM e2fsck's pass 1 steps over runs of all-zero unused inodes at once (wasm/lib/
// e2fsck-zero-inodes.c) on filesystems without metadata_csum, and passes 4 and 5 take runs of
// unused inodes and whole agreeing groups from the bitmaps (wasm/lib/e2fsck-bitmap-runs.c). These images put every inode the
// shortcut must not swallow inside such runs — unused inodes with a mode, a low dtime or a
// byte set only in the large-inode part, used ones, garbage, the project-quota inode, the first
// and last inodes of groups, inodes marked in the bitmap but zero, group counts that disagree
// while the bitmaps agree, wrong link counts — and e2fsck must still say and
// do exactly what host e2fsck 1.47.0 says and does: same exit code, messages and repaired bytes.
let dir: string;
const images: Record<string, string> = {};

/** The byte offset of inode `ino` (from dumpe2fs's inode table locations). */
function inodeOffset(dump: string, ino: number): number {
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(dump)![1]);
  const [inodesPerGroup, inodeSize, blockSize] = [field('Inodes per group'), field('Inode size'), field('Block size')];
  const tables = [...dump.matchAll(/Inode table at (\d+)-/g)].map((m) => Number(m[1]));
  const group = Math.floor((ino - 1) / inodesPerGroup);
  return tables[group]! * blockSize + ((ino - 1) % inodesPerGroup) * inodeSize;
}

async function makeImage(name: string, kind: 'ext2' | 'ext3', inodeSize: number, edits: string[], pokes: (dump: string) => [number, Uint8Array][] = () => []): Promise<void> {
  const tree = join(dir, `${name}-tree`);
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc', 'hostname'), 'zero-inodes\n');
  await writeFile(join(tree, 'big'), garbage(300_000, 7));
  // Top-level directories spread over the groups (Orlov): used inodes and directories in several.
  for (let d = 0; d < 6; d++) await mkdir(join(tree, `d${d}`, 'sub'), { recursive: true });
  const image = join(dir, `${name}.img`);
  await sparseFile(image, 64 << 20);
  const made = await host('mke2fs', ['-q', '-F', '-t', kind, '-I', String(inodeSize), '-N', '4096', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED}`, '-d', tree, image]);
  expect(made.exitCode).toBe(0);
  const dump = (await host('dumpe2fs', [image])).stdout;
  // The shortcut's precondition: no metadata_csum, no uninit_bg (every inode table is scanned).
  expect(dump).not.toMatch(/metadata_csum|uninit_bg/);
  if (edits.length > 0) {
    const commands = join(dir, `${name}.debugfs`);
    await writeFile(commands, `${edits.join('\n')}\n`);
    expect((await host('debugfs', ['-w', '-f', commands, image])).exitCode).toBe(0);
  }
  for (const [at, bytes] of pokes(dump)) await pokeBytes(image, at, bytes);
  images[name] = image;
}

beforeAll(async () => {
  await requireTool('e2fsck', 'e2fsprogs');
  dir = await tempDir();
  await makeImage('clean ext3', 'ext3', 256, []);
  await makeImage('clean ext2 with 128-byte inodes', 'ext2', 128, []);
  await makeImage('ext3 with odd inodes inside zero runs', 'ext3', 256, [
    'sif <300> mode 0100644', // unused, a mode and no dtime: PR_1_ZERO_DTIME
    'sif <512> mode 040755', // last inode of group 0
    'sif <513> mode 0100600', // first inode of group 1
    'sif <900> links_count 1', // used, no mode
    'sif <901> mode 0100644',
    'sif <901> links_count 1', // used, unattached
    'sif <1500> dtime 5', // unused with a low dtime: the orphan-list check
    'seti <2100>', // zero but marked in the bitmap
    'sif <2500> projid 7', // a byte only in the large-inode part
    'ssv prj_quota_inum 3000', // the project-quota inode inside a zero run
  ]);
  await makeImage('ext3 with wrong group counts', 'ext3', 256, [
    'set_bg 1 used_dirs_count 3', // pass 5, a group whose bitmaps agree
    'set_bg 2 free_inodes_count 7',
    'set_bg 7 free_inodes_count 1', // the last group
    'ssv free_inodes_count 5',
    'sif <2> links_count 9', // pass 4: the root's link count
    'sif <1200> links_count 3', // pass 4: a zero inode with a link count, between unused ones
  ]);
  await makeImage('ext3 with garbage inodes inside zero runs', 'ext3', 256, [], (dump) => [
    [inodeOffset(dump, 1700), garbage(256, 11)],
    [inodeOffset(dump, 3583), garbage(3 * 256, 12)],
    [inodeOffset(dump, 4096) + 255, new Uint8Array([1])], // the very last byte
  ]);
}, 120_000);

afterAll(async () => {
  await closeE2fsPool();
});

const modes: CheckMode[] = ['check', 'preen', 'fix'];
const normalize = (output: string, path: string): string => output.split(path).join('IMAGE');
const names = ['clean ext3', 'clean ext2 with 128-byte inodes', 'ext3 with odd inodes inside zero runs', 'ext3 with wrong group counts', 'ext3 with garbage inodes inside zero runs'];

describe.each(names)('e2fsck on an %s', (name) => {
  it.each(modes)('mode %s gives host e2fsck’s exit code, messages and resulting bytes', async (mode) => {
    const image = images[name]!;
    const [hostCopy, wasmCopy] = await twinCopies(image, dir, `${name.replace(/\s+/g, '-')}-${mode}`);
    const expected = await host('e2fsck', [...fsckArgs(mode, true), hostCopy]);
    const actual = await checkFilesystem(wasmCopy, { mode, force: true, fakeTime: FAKE_TIME });
    // The odd inodes are real findings: host e2fsck -n reports them.
    if (mode === 'check') expect(expected.exitCode === 0).toBe(name.startsWith('clean'));
    expect(actual.exitCode).toBe(expected.exitCode);
    expect(normalize(actual.output, wasmCopy)).toBe(normalize(expected.stdout + expected.stderr, hostCopy));
    expect(Buffer.compare(await readFile(wasmCopy), await readFile(hostCopy))).toBe(0);
  });
});

it('a filesystem of only zero unused inodes past the used ones checks clean like host e2fsck, and sees an inode set in the last slot', async () => {
  const copy = join(dir, 'last-slot.img');
  await copyFile(images['clean ext3']!, copy);
  const dump = (await host('dumpe2fs', [copy])).stdout;
  // Inode 4096 (the last of the last group) gets a mode: a deleted inode with zero dtime.
  const at = inodeOffset(dump, 4096);
  await pokeBytes(copy, at, new Uint8Array([0xa4, 0x81]));
  const expected = await host('e2fsck', ['-fn', copy]);
  const actual = await checkFilesystem(copy, { mode: 'check', fakeTime: FAKE_TIME });
  expect(expected.stdout).toContain('Deleted inode 4096 has zero dtime');
  expect(actual.exitCode).toBe(expected.exitCode);
  expect(normalize(actual.output, copy)).toBe(normalize(expected.stdout + expected.stderr, copy));
});
