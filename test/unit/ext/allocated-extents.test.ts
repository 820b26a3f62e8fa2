import { describe, expect, it } from 'vitest';
import { allocatedExtents } from '../../../src/ext/with-filesystem.js';

/** debugfs output around a dw_alloc run: the echoed command, the extents, the next command. */
const output = (lines: string[]): string => ['debugfs: write /dev/null "/f"', 'debugfs: dw_alloc "/f" 300', ...lines, 'debugfs: sif "/f" size 1228800', ''].join('\n');

describe('allocatedExtents (debugfs dw_alloc output)', () => {
  it('returns the extents in logical order, whatever order debugfs printed them in', () => {
    const text = output(['dw_extent 12 1013 288', 'dw_extent 0 1000 12']);
    expect(allocatedExtents(text, '/f', 300, 1 << 20)).toEqual([
      { logical: 0, physical: 1000, length: 12 },
      { logical: 12, physical: 1013, length: 288 },
    ]);
  });

  it('refuses a list with a gap, with too many or too few blocks, or with no list at all', () => {
    expect(() => allocatedExtents(output(['dw_extent 0 1000 12', 'dw_extent 13 1013 287']), '/f', 300, 1 << 20)).toThrow(/no block 12/);
    expect(() => allocatedExtents(output(['dw_extent 0 1000 301']), '/f', 300, 1 << 20)).toThrow(/301 blocks, expected 300/);
    expect(() => allocatedExtents(output(['dw_extent 0 1000 12', 'dw_extent 0 2000 288']), '/f', 300, 1 << 20)).toThrow(/no block 12/);
    expect(() => allocatedExtents(output([]), '/f', 300, 1 << 20)).toThrow(/0 blocks, expected 300/);
  });

  it('refuses extents outside the filesystem (E_EXTFS)', () => {
    expect(() => allocatedExtents(output(['dw_extent 0 1000 300']), '/f', 300, 1200)).toThrow(expect.objectContaining({ code: 'E_EXTFS' }));
    expect(() => allocatedExtents(output(['dw_extent 0 0 300']), '/f', 300, 1 << 20)).toThrow(/outside the filesystem/);
  });
});
