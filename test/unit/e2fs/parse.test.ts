import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { fsckArgs, fsckExitStatus, mke2fsArgs, parseDumpe2fsHeader, headerNeedsRecovery, maxPartitionSectors, parsePartitionNumber } from '../../../src/e2fs/index.js';
import type { PartitionTable } from '../../../src/partition/index.js';
import { resizeFailure } from '../../../src/e2fs/grow.js';

describe('resizeFailure', () => {
  it('takes resize2fs’s com_err line, not its banner or the trailing e2fsck advice, naming the user’s image', () => {
    const output = [
      'resize2fs 1.47.0 (5-Feb-2023)',
      'Resizing the filesystem on disk.img?offset=1048576 to 78643200 (4k) blocks.',
      'resize2fs: Illegal doubly indirect block found while trying to resize disk.img?offset=1048576',
      "Please run 'e2fsck -fy disk.img?offset=1048576' to fix the filesystem",
      'after the aborted resize operation.',
      '',
    ].join('\n');
    expect(resizeFailure(output, 'disk.img?offset=1048576', 'disk.img')).toBe('Illegal doubly indirect block found while trying to resize disk.img');
  });

  it('joins the lines of a failure without a com_err line into one', () => {
    const output = 'resize2fs 1.47.0 (5-Feb-2023)\nThe containing partition (or device) is only 16384 (4k) blocks.\nYou requested a new size of 32768 blocks.\n\n';
    expect(resizeFailure(output, 'fs.img', 'fs.img')).toBe('The containing partition (or device) is only 16384 (4k) blocks. You requested a new size of 32768 blocks.');
  });

  it('falls back to the last line when there is nothing but context', () => {
    expect(resizeFailure("resize2fs 1.47.0 (5-Feb-2023)\nPlease run 'e2fsck -f fs.img' first.\n\n", 'fs.img', 'fs.img')).toBe("Please run 'e2fsck -f fs.img' first.");
  });
});

describe('fsckExitStatus', () => {
  it('maps e2fsck exit codes to statuses', () => {
    expect(fsckExitStatus(0)).toBe('clean');
    expect(fsckExitStatus(1)).toBe('fixed');
    expect(fsckExitStatus(2)).toBe('fixed');
    expect(fsckExitStatus(3)).toBe('fixed');
    expect(fsckExitStatus(4)).toBe('uncorrectable');
    expect(fsckExitStatus(5)).toBe('uncorrectable');
    expect(fsckExitStatus(8)).toBe('error');
    expect(fsckExitStatus(12)).toBe('error');
    expect(fsckExitStatus(32)).toBe('error');
    expect(fsckExitStatus(64)).toBe('error');
  });

  test.prop([fc.integer({ min: 0, max: 255 })])('any operational-error bit wins over the repair bits', (code) => {
    const status = fsckExitStatus(code);
    if (code & ~7) expect(status).toBe('error');
    else if (code & 4) expect(status).toBe('uncorrectable');
    else expect(status).toBe(code === 0 ? 'clean' : 'fixed');
  });
});

describe('fsckArgs', () => {
  it('forces a full check for check and fix but not for preen', () => {
    expect(fsckArgs('check', undefined)).toEqual(['-f', '-n']);
    expect(fsckArgs('fix', undefined)).toEqual(['-f', '-y']);
    expect(fsckArgs('preen', undefined)).toEqual(['-p']);
    expect(fsckArgs('preen', true)).toEqual(['-f', '-p']);
    expect(fsckArgs('check', false)).toEqual(['-n']);
  });

  it('rejects an unknown mode', () => {
    expect(() => fsckArgs('repair' as never, undefined)).toThrow(/check, preen or fix/);
  });
});

describe('mke2fsArgs', () => {
  it('builds mke2fs options from typed values', () => {
    expect(
      mke2fsArgs({ type: 'ext3', size: 8 * 2 ** 30, label: 'root', uuid: '0b9a5f4e-1c2d-4e3f-8a7b-6c5d4e3f2a1b', hashSeed: '5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6', offset: 1048576, fromDirectory: '/src' }),
    ).toEqual(['-F', '-t', 'ext3', '-L', 'root', '-U', '0b9a5f4e-1c2d-4e3f-8a7b-6c5d4e3f2a1b', '-E', 'hash_seed=5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6,offset=1048576', '-d', '/src']);
  });

  it('names the bad option and value', () => {
    expect(() => mke2fsArgs({ type: 'xfs' as never, size: 1024 })).toThrow('Expected `type` to be ext2, ext3 or ext4, got `xfs`');
    expect(() => mke2fsArgs({ type: 'ext4', size: 1000 })).toThrow('Expected `size` to be a positive multiple of 1024 bytes, got `1000`');
    expect(() => mke2fsArgs({ type: 'ext4', size: 1024, label: 'x'.repeat(17) })).toThrow(/at most 16 bytes/);
    expect(() => mke2fsArgs({ type: 'ext4', size: 1024, uuid: 'not-a-uuid' })).toThrow(/uuid/);
    expect(() => mke2fsArgs({ type: 'ext4', size: 1024, extendedOptions: ['root_owner=0:0,discard'] })).toThrow(/extended filesystem option/);
  });
});

describe('parseDumpe2fsHeader', () => {
  const sample = [
    'Filesystem volume name:   root',
    'Filesystem UUID:          0b9a5f4e-1c2d-4e3f-8a7b-6c5d4e3f2a1b',
    'Filesystem features:      has_journal ext_attr resize_inode dir_index filetype needs_recovery sparse_super',
    'Block count:              2097152',
    'Filesystem created:       Tue Nov 14 22:13:20 2023',
    '',
    'Journal features:         (none)',
    'Total journal size:       64M',
  ].join('\n');

  it('keeps every "Name: value" line, values may contain colons', () => {
    const fields = parseDumpe2fsHeader(sample);
    expect(fields['Block count']).toBe('2097152');
    expect(fields['Filesystem created']).toBe('Tue Nov 14 22:13:20 2023');
    expect(fields['Total journal size']).toBe('64M');
  });

  it('detects a journal that needs recovery from the feature list', () => {
    expect(headerNeedsRecovery(parseDumpe2fsHeader(sample))).toBe(true);
    expect(headerNeedsRecovery(parseDumpe2fsHeader(sample.replace(' needs_recovery', '')))).toBe(false);
  });

  test.prop([fc.string()])('any text parses to a record without throwing', (text) => {
    expect(typeof parseDumpe2fsHeader(text)).toBe('object');
  });
});

describe('maxPartitionSectors', () => {
  const base = { id: 'x', diskSize: 0n, partitions: [], warnings: [] };
  it('lets a dos partition run to the last sector', () => {
    expect(maxPartitionSectors({ ...base, label: 'dos', sectorSize: 512 } as PartitionTable, 2048n, 20971520n)).toBe(20971520n - 2048n);
  });
  it('leaves room for the backup GPT entry array and header', () => {
    expect(maxPartitionSectors({ ...base, label: 'gpt', sectorSize: 512, entryCount: 128 } as PartitionTable, 2048n, 20971520n)).toBe(20971520n - 34n - 2048n + 1n);
    expect(maxPartitionSectors({ ...base, label: 'gpt', sectorSize: 4096, entryCount: 128 } as PartitionTable, 256n, 2621440n)).toBe(2621440n - 6n - 256n + 1n);
  });
});

describe('parsePartitionNumber', () => {
  it('accepts partition numbers and names the bad value otherwise', () => {
    expect(parsePartitionNumber('5')).toBe(5);
    expect(() => parsePartitionNumber('0')).toThrow('Expected `--partition` to be a partition number like 1 or 5, got `0`');
    expect(() => parsePartitionNumber('1;rm')).toThrow(/got `1;rm`/);
  });
});
