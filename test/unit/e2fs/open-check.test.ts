import { describe, expect, it } from 'vitest';
import { openProblem } from '../../../src/e2fs/open-check.js';

const header = (features: string): string =>
  ['Filesystem magic number:  0xEF53', `Filesystem features:      ${features}`, 'Block count:              24576', 'First block:              1', 'Blocks per group:         8192', ''].join('\n');
const group = (n: number, first: number, lines: string[], csum = ''): string =>
  [`Group ${n}: (Blocks ${first}-${first + 8191})${csum}`, ...lines.map((l) => `  ${l}`)].join('\n');
const ok = (bb: number, ib: number, it: string): string[] => [`Block bitmap at ${bb} (+1)`, `Inode bitmap at ${ib} (+2)`, `Inode table at ${it} (+3)`, '100 free blocks, 10 free inodes, 2 directories'];
const dump = (stdout: string, exitCode = 0, stderr = ''): { exitCode: number; stdout: string; stderr: string } => ({ exitCode, stdout, stderr });

const layout = (g1: string[], features = 'ext_attr resize_inode dir_index filetype sparse_super'): string =>
  [
    header(features),
    group(0, 1, ['Primary superblock at 1, Group descriptors at 2-2', 'Reserved GDT blocks at 3-10', ...ok(11, 12, '13-268')]),
    group(1, 8193, ['Backup superblock at 8193, Group descriptors at 8194-8194', ...g1]),
    group(2, 16385, ok(16385, 16386, '16387-16642')),
  ].join('\n');

describe('openProblem (e2fsprogs 1.47 open rules over dumpe2fs output)', () => {
  it('accepts a consistent layout', () => {
    expect(openProblem(dump(layout(ok(8195, 8196, '8197-8452'))))).toBeUndefined();
  });

  it("reports dumpe2fs's own refusal without the program name", () => {
    expect(openProblem(dump('', 60, 'dumpe2fs 1.47.0 (5-Feb-2023)\ndumpe2fs: The ext2 superblock is corrupt while trying to open x\n'))).toBe('The ext2 superblock is corrupt while trying to open x');
  });

  it('refuses a descriptor whose checksum dumpe2fs marks EXPECTED', () => {
    const text = layout(ok(8195, 8196, '8197-8452')).replace('Group 2: (Blocks 16385-24576)', 'Group 2: (Blocks 16385-24576) csum 0x1234 (EXPECTED 0x00c6)');
    expect(openProblem(dump(text))).toBe('group descriptor 2 checksum does not match');
  });

  it('refuses a bitmap outside its group without flex_bg, and accepts it with flex_bg', () => {
    expect(openProblem(dump(layout(ok(20000, 8196, '8197-8452'))))).toBe('group descriptor 1: bad block bitmap location 20000');
    expect(openProblem(dump(layout(ok(20000, 8196, '8197-8452'), 'flex_bg sparse_super')))).toBeUndefined();
  });

  it('refuses an inode table past the end of the filesystem even with flex_bg', () => {
    expect(openProblem(dump(layout(ok(8195, 8196, '24500-24755'), 'flex_bg')))).toBe('group descriptor 1: bad inode table location 24500-24755');
  });

  it('refuses metadata sharing a block: a bitmap on a descriptor block, an inode table over a bitmap', () => {
    expect(openProblem(dump(layout(ok(8194, 8196, '8197-8452'))))).toMatch(/block bitmap of group 1 overlaps superblock or descriptors of group 1 at block 8194|superblock or descriptors of group 1 overlaps block bitmap of group 1/);
    expect(openProblem(dump(layout(ok(8195, 8196, '8196-8451'))))).toMatch(/overlaps/);
  });

  it('refuses a group without an inode table line', () => {
    expect(openProblem(dump(layout(['Block bitmap at 8195 (+2)', 'Inode bitmap at 8196 (+3)'])))).toBe('group descriptor 1: bad inode table location (none)');
  });
});
