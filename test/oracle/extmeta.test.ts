import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSuperblock, readUsedBlockRanges } from '../../src/extmeta/index.js';
import { isDiskwrightError } from '../../src/errors.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, E2FSPROGS_FAKE_TIME: '1370390400' };
const MiB = 1 << 20;

interface Case {
  readonly name: string;
  readonly mkfs: readonly string[];
  readonly sizeMiB: number;
  /** The filesystem starts this many bytes into the image (like a partition). */
  readonly offset?: number;
  /** Delete some files afterwards so the bitmaps have free holes between used blocks. */
  readonly punch?: boolean;
}

const CASES: readonly Case[] = [
  { name: 'ext2 with 1 KiB blocks (first data block 1)', mkfs: ['-t', 'ext2', '-b', '1024'], sizeMiB: 24, punch: true },
  { name: 'ext3 with 4 KiB blocks', mkfs: ['-t', 'ext3', '-b', '4096'], sizeMiB: 96, punch: true },
  { name: 'ext4 default (flex_bg, metadata_csum, 64bit, BLOCK_UNINIT groups)', mkfs: ['-t', 'ext4', '-O', '64bit,metadata_csum'], sizeMiB: 300, punch: true },
  { name: 'ext4 with uninit_bg and 32-byte descriptors', mkfs: ['-t', 'ext4', '-O', '^metadata_csum,^64bit,uninit_bg'], sizeMiB: 200 },
  { name: 'ext4 without flex_bg', mkfs: ['-t', 'ext4', '-O', '^flex_bg'], sizeMiB: 200, punch: true },
  { name: 'ext4 with meta_bg', mkfs: ['-t', 'ext4', '-O', 'meta_bg,^resize_inode', '-b', '1024'], sizeMiB: 64, punch: true },
  { name: 'ext4 at a 1 MiB offset (a partition)', mkfs: ['-t', 'ext4', '-L', 'rootfs'], sizeMiB: 128, offset: MiB },
];

let dir: string;
let tree: string;

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  await requireTool('dumpe2fs', 'e2fsprogs');
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir('diskwright-extmeta-');
  tree = join(dir, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  for (let i = 0; i < 40; i++) {
    const bytes = Buffer.alloc(3000 + i * 7919, i + 1);
    await writeFile(join(tree, i % 2 ? 'sub' : '', `file${i}`), bytes);
  }
});

async function makeFs(c: Case, index: number): Promise<{ image: string; spec: string }> {
  const image = join(dir, `fs${index}.img`);
  const handle = await open(image, 'w');
  await handle.truncate((c.offset ?? 0) + c.sizeMiB * MiB + MiB);
  await handle.close();
  const extended = c.offset ? ['-E', `offset=${c.offset}`] : [];
  const blocksArg = c.offset ? [`${(c.sizeMiB * MiB) / 1024}k`] : [`${c.sizeMiB}M`];
  await execa('mke2fs', ['-q', '-F', ...c.mkfs, ...extended, '-d', tree, image, ...blocksArg], { env });
  const spec = c.offset ? `${image}?offset=${c.offset}` : image;
  if (c.punch) {
    for (const i of [3, 8, 17, 30]) await execa('debugfs', ['-w', '-R', `rm /${i % 2 ? 'sub/' : ''}file${i}`, spec], { env });
  }
  return { image, spec };
}

function headerFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m) fields.set(m[1]!.trim(), m[2]!.trim());
  }
  return fields;
}

/** Used blocks as dumpe2fs sees them: every block not listed under a group's "Free blocks:". */
function usedFromDumpe2fs(text: string, firstDataBlock: number, blocksCount: number): [number, number][] {
  const free: [number, number][] = [];
  for (const m of text.matchAll(/^\s+Free blocks: (.*)$/gm)) {
    for (const part of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [a, b] = part.split('-').map(Number);
      free.push([a!, (b ?? a!) + 1]);
    }
  }
  free.sort((x, y) => x[0] - y[0]);
  const used: [number, number][] = [[0, 1]];
  let cursor = firstDataBlock;
  for (const [s, e] of free) {
    if (s > cursor) used.push([cursor, s]);
    cursor = Math.max(cursor, e);
  }
  if (cursor < blocksCount) used.push([cursor, blocksCount]);
  // merge touching
  const merged: [number, number][] = [];
  for (const r of used) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([...r]);
  }
  return merged;
}

describe('readSuperblock and readUsedBlockRanges agree with dumpe2fs', () => {
  CASES.forEach((c, index) => {
    it(c.name, async () => {
      const { image, spec } = await makeFs(c, index);
      const sb = await readSuperblock(image, { offset: c.offset ?? 0 });
      const header = headerFields((await execa('dumpe2fs', ['-h', spec], { env })).stdout);
      expect(sb.features.join(' ')).toBe(header.get('Filesystem features'));
      expect(String(sb.blocksCount)).toBe(header.get('Block count'));
      expect(String(sb.freeBlocksCount)).toBe(header.get('Free blocks'));
      expect(String(sb.reservedBlocksCount)).toBe(header.get('Reserved block count'));
      expect(String(sb.inodesCount)).toBe(header.get('Inode count'));
      expect(String(sb.freeInodesCount)).toBe(header.get('Free inodes'));
      expect(String(sb.blockSize)).toBe(header.get('Block size'));
      expect(String(sb.firstDataBlock)).toBe(header.get('First block'));
      expect(String(sb.blocksPerGroup)).toBe(header.get('Blocks per group'));
      expect(String(sb.inodesPerGroup)).toBe(header.get('Inodes per group'));
      expect(String(sb.inodeSize)).toBe(header.get('Inode size'));
      expect(sb.uuid).toBe(header.get('Filesystem UUID'));
      expect(sb.label || '<none>').toBe(header.get('Filesystem volume name'));
      expect(sb.state.clean ? 'clean' : 'not clean').toBe(header.get('Filesystem state'));
      if (header.has('Group descriptor size')) expect(String(sb.descSize)).toBe(header.get('Group descriptor size'));
      expect(sb.kind).toBe(c.mkfs[1]);
      expect(sb.hasJournal).toBe(c.mkfs[1] !== 'ext2');
      expect(sb.needsRecovery).toBe(false);

      const full = (await execa('dumpe2fs', [spec], { env })).stdout;
      const expected = usedFromDumpe2fs(full, sb.firstDataBlock, Number(sb.blocksCount));
      const ranges = await readUsedBlockRanges(image, { offset: c.offset ?? 0 });
      const actual = ranges.map((r) => [Number(r.start) / sb.blockSize, Number(r.start + r.length) / sb.blockSize]);
      expect(actual).toEqual(expected);
    });
  });

  it('detects needs_recovery set with debugfs, and reports it among the features', async () => {
    const { image } = await makeFs({ name: 'journal', mkfs: ['-t', 'ext4'], sizeMiB: 64 }, 100);
    await execa('debugfs', ['-w', '-R', 'feature needs_recovery', image], { env });
    const sb = await readSuperblock(image);
    const header = headerFields((await execa('dumpe2fs', ['-h', image], { env })).stdout);
    expect(header.get('Filesystem features')).toContain('needs_recovery');
    expect(sb.needsRecovery).toBe(true);
    expect(sb.features.join(' ')).toBe(header.get('Filesystem features'));
  });

  it('reports an error state the way dumpe2fs does', async () => {
    const { image } = await makeFs({ name: 'errors', mkfs: ['-t', 'ext3'], sizeMiB: 32 }, 101);
    await execa('debugfs', ['-w', '-R', 'ssv state 3', image], { env });
    const sb = await readSuperblock(image);
    const header = headerFields((await execa('dumpe2fs', ['-h', image], { env })).stdout);
    expect(header.get('Filesystem state')).toBe('clean with errors');
    expect(sb.state).toMatchObject({ clean: true, errors: true });
  });

  it('throws E_BAD_SIGNATURE where there is no filesystem and E_TRUNCATED for a cut image', async () => {
    const blank = join(dir, 'blank.img');
    await writeFile(blank, Buffer.alloc(8192));
    await expect(readSuperblock(blank)).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_BAD_SIGNATURE'));
    const cut = join(dir, 'cut.img');
    await writeFile(cut, Buffer.alloc(1500));
    await expect(readSuperblock(cut)).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_TRUNCATED'));
  });
});
