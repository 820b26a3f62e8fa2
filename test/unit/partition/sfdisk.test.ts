import { describe, expect, it } from 'vitest';
import { formatSfdiskJson, formatSfdiskList, parsePartitionTable, partitionNode, toSfdiskJson } from '../../../src/partition/index.js';
import { humanSize } from '../../../src/partition/sfdisk.js';
import { articleLikeDos, entry, gptImage } from './build.js';

describe('sfdisk-compatible output', () => {
  it('formats sizes like util-linux size_to_human_string', () => {
    expect(humanSize(8589934592n, true)).toBe('8 GiB');
    expect(humanSize(104857600n, true)).toBe('100 MiB');
    expect(humanSize(9999872n, true)).toBe('9.54 MiB'); // the disk line keeps two decimals
    expect(humanSize(7864320n, true)).toBe('7.5 MiB'); // …dropping a trailing zero
    expect(humanSize(1024n * 1024n * 1024n - 1n, true)).toBe('1024 MiB');
    expect(humanSize(15986688n * 512n)).toBe('7.6G');
    expect(humanSize(784384n * 512n)).toBe('383M');
    expect(humanSize(1536n)).toBe('1.5K');
    expect(humanSize(100000n * 512n)).toBe('48.8M');
    expect(humanSize(512n)).toBe('512B');
    expect(humanSize(1023n * 1024n + 1000n)).toBe('1024K'); // rounding carries into the integer part, not the unit
  });

  it('names partition nodes the libfdisk way', () => {
    expect(partitionNode('disk.img', 5)).toBe('disk.img5');
    expect(partitionNode('/dev/loop0', 1)).toBe('/dev/loop0p1');
  });

  it('prints dos JSON with bootable only when set and no uuid', () => {
    const json = toSfdiskJson(parsePartitionTable(articleLikeDos()), 'x.img');
    expect(Object.keys(json.partitiontable)).toEqual(['label', 'id', 'device', 'unit', 'grain', 'sectorsize', 'partitions']);
    expect(json.partitiontable.partitions![0]).toEqual({ node: 'x.img1', start: 64, size: 1000, type: '83', bootable: true });
    expect(json.partitiontable.partitions![1]).toEqual({ node: 'x.img2', start: 2000, size: 2096, type: '5' });
  });

  it('prints gpt JSON with firstlba/lastlba before sectorsize and omits empty names and attrs', () => {
    const table = parsePartitionTable(gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [entry(1, 2048n, 3000n)] }, 16384));
    const json = toSfdiskJson(table, 'g.img');
    expect(Object.keys(json.partitiontable)).toEqual(['label', 'id', 'device', 'unit', 'firstlba', 'lastlba', 'sectorsize', 'partitions']);
    expect(Object.keys(json.partitiontable.partitions![0]!)).toEqual(['node', 'start', 'size', 'type', 'uuid']);
    expect(JSON.parse(formatSfdiskJson(table, 'g.img'))).toEqual(json);
  });

  it('escapes names the way util-linux jsonwrt does', () => {
    const table = parsePartitionTable(gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [entry(1, 40n, 50n, { name: 'a"b\\c\td\u0001/é' })] }));
    expect(formatSfdiskJson(table, 'g.img')).toContain('"name": "a\\"b\\\\c\\td\\u0001/é"');
  });

  it('sizes listing columns by libsmartcols rules (hint applies only when data fills the header)', () => {
    const text = formatSfdiskList(parsePartitionTable(articleLikeDos()), 'x.img');
    expect(text.split('\n').slice(7, 10)).toEqual([
      'Device     Boot Start   End Sectors  Size Id Type',
      'x.img1     *       64  1063    1000  500K 83 Linux',
      'x.img2           2000  4095    2096    1M  5 Extended',
    ]);
  });

  it('prints no table for a label without partitions', () => {
    const table = parsePartitionTable(gptImage({ diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF', partitions: [] }));
    expect(formatSfdiskList(table, 'e.img').trimEnd().split('\n').at(-1)).toBe('Disk identifier: 01234567-89AB-CDEF-0123-456789ABCDEF');
    expect(toSfdiskJson(table, 'e.img').partitiontable.partitions).toBeUndefined();
  });
});
