import { describe, expect, it } from 'vitest';
import { DiskwrightError, isDiskwrightError } from '../../../src/errors.js';
import { getPartition, parsePartitionTable, partitionByteRange, MAX_LOGICAL_PARTITIONS } from '../../../src/partition/index.js';
import { articleLikeDos, dosImage, u32 } from './build.js';

/** Byte offset of entry `i` (0-based) of the MBR/EBR at `lba`. */
const entryAt = (lba: number, i: number): number => lba * 512 + 446 + i * 16;

function catchError(fn: () => unknown): DiskwrightError {
  try {
    fn();
  } catch (error) {
    if (isDiskwrightError(error)) return error;
    throw error;
  }
  throw new Error('expected a DiskwrightError');
}

describe('dos partition tables', () => {
  it('reads primaries and numbers logical partitions 5, 6, 7 in EBR chain order', () => {
    const table = parsePartitionTable(articleLikeDos());
    expect(table.label).toBe('dos');
    expect(table.id).toBe('0x1234abcd');
    expect(table.warnings).toEqual([]);
    expect(table.partitions.map((p) => [p.number, p.kind, p.start, p.size, p.type, p.bootable])).toEqual([
      [1, 'primary', 64n, 1000n, '83', true],
      [2, 'extended', 2000n, 2096n, '5', false],
      [5, 'logical', 2002n, 500n, '82', false],
      [6, 'logical', 2602n, 400n, '83', false],
      [7, 'logical', 3102n, 994n, '8e', false],
    ]);
    expect(table.partitions.filter((p) => p.kind === 'logical').map((p) => p.ebr)).toEqual([2000n, 2600n, 3100n]);
  });

  it('reads logical starts relative to their EBR and links relative to the extended start', () => {
    const image = articleLikeDos();
    // Hand-check the bytes the encoder wrote: EBR 2 data entry start 2, link start 3100-2000.
    const view = new DataView(image.buffer);
    expect(view.getUint32(entryAt(2600, 0) + 8, true)).toBe(2);
    expect(view.getUint32(entryAt(2600, 1) + 8, true)).toBe(1100);
    expect(image[entryAt(2600, 1) + 4]).toBe(0x05);
  });

  it('keeps primary slot numbers when earlier slots are empty', () => {
    const table = parsePartitionTable(dosImage(2048, { diskId: 1, primaries: [undefined, undefined, { start: 100n, size: 10n, type: 0x0c }] }));
    expect(table.partitions.map((p) => [p.number, p.type])).toEqual([[3, 'c']]);
  });

  it('throws E_LOOP when an EBR links back to an earlier EBR', () => {
    const image = articleLikeDos();
    u32(image, entryAt(3100, 1) + 8, 600); // last EBR → EBR at 2600
    image[entryAt(3100, 1) + 4] = 0x05;
    u32(image, entryAt(3100, 1) + 12, 10);
    const error = catchError(() => parsePartitionTable(image));
    expect(error.code).toBe('E_LOOP');
    expect(error.message).toContain('2600');
  });

  it('throws E_LOOP for an EBR that links to itself', () => {
    const image = articleLikeDos();
    image[entryAt(2000, 1) + 4] = 0x05;
    u32(image, entryAt(2000, 1) + 8, 0);
    expect(catchError(() => parsePartitionTable(image)).code).toBe('E_LOOP');
  });

  it('warns and stops the chain when a link points outside the extended partition', () => {
    const image = articleLikeDos();
    u32(image, entryAt(2600, 1) + 8, 5000);
    const table = parsePartitionTable(image);
    expect(table.partitions.map((p) => p.number)).toEqual([1, 2, 5, 6]);
    expect(table.warnings.join('\n')).toMatch(/outside extended partition 2/);
  });

  it('warns when the next EBR lies past the end of a truncated image', () => {
    const image = articleLikeDos().slice(0, 2700 * 512);
    const table = parsePartitionTable(image);
    expect(table.partitions.map((p) => p.number)).toEqual([1, 2, 5, 6]);
    expect(table.warnings.join('\n')).toMatch(/EBR at sector 3100 lies beyond the end of the image/);
    expect(table.warnings.join('\n')).toMatch(/partition 6 ends at sector 3001, beyond the end/);
  });

  it('warns about a logical partition that sticks out of its extended partition', () => {
    const image = articleLikeDos();
    u32(image, entryAt(3100, 0) + 12, 5000);
    expect(parsePartitionTable(image).warnings.join('\n')).toMatch(/logical partition 7 .* lies outside extended partition 2/);
  });

  it('warns about overlapping primary partitions', () => {
    const table = parsePartitionTable(
      dosImage(2048, {
        diskId: 1,
        primaries: [
          { start: 100n, size: 100n, type: 0x83 },
          { start: 150n, size: 100n, type: 0x83 },
        ],
      }),
    );
    expect(table.warnings).toContain('partition 2 overlaps partition 1');
  });

  it('ignores a second extended partition with a warning', () => {
    const table = parsePartitionTable(
      dosImage(2048, {
        diskId: 1,
        primaries: [
          { start: 100n, size: 100n, type: 0x05 },
          { start: 300n, size: 100n, type: 0x0f },
        ],
      }),
    );
    expect(table.warnings).toContain('ignoring extra extended partition 2');
    expect(table.partitions.map((p) => p.kind)).toEqual(['extended', 'extended']);
  });

  it('reports an EBR without 0x55AA as a warning', () => {
    const image = articleLikeDos();
    image[2600 * 512 + 510] = 0;
    expect(parsePartitionTable(image).warnings).toContain('EBR at sector 2600 lacks the 0x55AA signature');
  });

  it('throws E_TRUNCATED for an image shorter than one sector', () => {
    expect(catchError(() => parsePartitionTable(new Uint8Array(300))).code).toBe('E_TRUNCATED');
  });

  it('throws E_BAD_SIGNATURE when sector 0 has no 0x55AA', () => {
    const error = catchError(() => parsePartitionTable(new Uint8Array(4096)));
    expect(error.code).toBe('E_BAD_SIGNATURE');
    expect(error.message).toMatch(/no partition table/);
  });

  it('lists partitions up to #60 and warns about the rest, as sfdisk does, for a 70-EBR chain', () => {
    const n = 70;
    const logicals = Array.from({ length: n }, (_v, i) => ({ ebr: BigInt(100 + i * 3), start: BigInt(101 + i * 3), size: 2n, type: 0x83 }));
    const image = dosImage(100 + n * 3 + 10, { diskId: 1, primaries: [{ start: 100n, size: BigInt(n * 3), type: 0x05 }], logicals });
    const table = parsePartitionTable(image);
    // sfdisk --json on this image (util-linux 2.38): 57 nodes, the last one number 60.
    expect(table.partitions).toHaveLength(1 + MAX_LOGICAL_PARTITIONS);
    expect(table.partitions.at(-1)!.number).toBe(60);
    expect(table.warnings).toContain('omitting partitions after #60, as sfdisk does (the EBR chain of extended partition 1 goes on at sector 268)');
  });

  it('getPartition names the partitions that exist when the number is unknown', () => {
    const table = parsePartitionTable(articleLikeDos());
    expect(getPartition(table, 6).start).toBe(2602n);
    const error = catchError(() => getPartition(table, 3));
    expect(error.code).toBe('E_NO_PARTITION');
    expect(error.message).toContain('1, 2, 5, 6, 7');
  });

  it('partitionByteRange converts sectors to bytes', () => {
    const table = parsePartitionTable(articleLikeDos());
    expect(partitionByteRange(table, getPartition(table, 5))).toEqual({ offset: 2002n * 512n, length: 500n * 512n });
  });
});
