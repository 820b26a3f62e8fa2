import { describe, expect, it } from 'vitest';
import { e2fsckPassAt, e2fsckProgressFilter, resize2fsProgressReader, type PassProgress } from '../../../src/e2fs/progress.js';

// As the WebAssembly e2fsck 1.47.0 printed them with `-fn -C 0` (bars shortened).
const bar = (percent: string): string => `\x01disk.img: |=====     | ${percent}%   \r\x02`;
const E2FSCK_OUT =
  'Pass 1: Checking inodes, blocks, and sizes\n' +
  bar(' 0.1') + bar('35.4') + bar('69.7') +
  '\x01                                                                               \r\x02' +
  'Pass 2: Checking directory structure\nPass 3: Checking directory connectivity\nPass 4: Checking reference counts\n' +
  bar('92.1') + bar('94.7') +
  'Pass 5: Checking group summary information\n' +
  bar('95.1') + bar('100.0') +
  'disk.img: 11/4194304 files (0.0% non-contiguous), 276499/16777216 blocks\n';
const E2FSCK_TEXT =
  'Pass 1: Checking inodes, blocks, and sizes\nPass 2: Checking directory structure\nPass 3: Checking directory connectivity\n' +
  'Pass 4: Checking reference counts\nPass 5: Checking group summary information\n' +
  'disk.img: 11/4194304 files (0.0% non-contiguous), 276499/16777216 blocks\n';

function feed(text: string, sizes: readonly number[]): { out: string; passes: PassProgress[] } {
  const passes: PassProgress[] = [];
  const filter = e2fsckProgressFilter((p) => passes.push(p));
  let out = '';
  let at = 0;
  for (let i = 0; at < text.length; i++) {
    const size = sizes[i % sizes.length]!;
    out += filter.write(text.slice(at, at + size));
    at += size;
  }
  return { out: out + filter.flush(), passes };
}

describe('e2fsck -C 0 progress', () => {
  it('maps the overall percentage onto e2fsck’s passes (70/90/92/95/100)', () => {
    expect(e2fsckPassAt(0)).toEqual({ pass: 1, fraction: 0 });
    expect(e2fsckPassAt(35)).toEqual({ pass: 1, fraction: 0.5 });
    expect(e2fsckPassAt(80)).toEqual({ pass: 2, fraction: 0.5 });
    expect(e2fsckPassAt(93.5)).toEqual({ pass: 4, fraction: 0.5 });
    expect(e2fsckPassAt(100)).toEqual({ pass: 5, fraction: 1 });
  });

  it('removes the bar and reports passes 1–5 in order, however the output is split into chunks', () => {
    for (const sizes of [[E2FSCK_OUT.length], [1], [2, 7], [13, 1, 50], [3]]) {
      const { out, passes } = feed(E2FSCK_OUT, sizes);
      expect(out).toBe(E2FSCK_TEXT);
      const order = passes.map((p) => p.pass);
      expect(order).toEqual([...order].sort((a, b) => a - b));
      expect([...new Set(order)]).toEqual([1, 2, 3, 4, 5]);
      expect(passes.at(-1)).toEqual({ pass: 5, passes: 5, name: 'checking group summary information', fraction: 1 });
      expect(passes.find((p) => p.pass === 1 && p.fraction > 0.49 && p.fraction < 0.51)).toBeDefined();
    }
  });

  it('reports passes from the bar alone when e2fsck prints no "Pass N" lines (preen)', () => {
    const { out, passes } = feed(bar('10.0') + bar('80.0') + 'disk.img: clean, 11/65536 files\n', [5]);
    expect(out).toBe('disk.img: clean, 11/65536 files\n');
    expect(passes.map((p) => p.pass)).toEqual([1, 2]);
  });
});

describe('resize2fs -p progress', () => {
  it('reports each pass and its 40 marks, however the output is split', () => {
    // As the WebAssembly resize2fs 1.47.0 printed it growing a 64 GiB ext2 to 256 GiB.
    const text =
      'Resizing the filesystem on r.img to 67108864 (4k) blocks.\nBegin pass 1 (max = 1024)\nExtending the inode table     ' +
      '-'.repeat(40) + '\b'.repeat(40) + 'X'.repeat(20) + 'X'.repeat(20) + '\nBegin pass 3 (max = 2)\nScanning inode table          ' + 'X'.repeat(40) +
      '\nThe filesystem on r.img is now 67108864 (4k) blocks long.\n\n';
    for (const size of [text.length, 1, 9]) {
      const passes: PassProgress[] = [];
      const read = resize2fsProgressReader((p) => passes.push(p));
      for (let at = 0; at < text.length; at += size) read(text.slice(at, at + size));
      expect(passes[0]).toEqual({ pass: 1, passes: 5, name: 'extending the inode table', fraction: 0 });
      expect(passes.filter((p) => p.pass === 1).at(-1)!.fraction).toBe(1);
      expect(passes.at(-1)).toEqual({ pass: 3, passes: 5, name: 'scanning inode table', fraction: 1 });
    }
  });
});
