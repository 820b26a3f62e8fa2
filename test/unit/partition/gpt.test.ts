import { describe, expect, it } from 'vitest';
import { DiskwrightError, isDiskwrightError } from '../../../src/errors.js';
import { crc32 } from '../../../src/bytes/index.js';
import { formatGptAttributes, parsePartitionTable, MAX_GPT_ENTRIES } from '../../../src/partition/index.js';
import { EFI_SYSTEM, entry, gptImage, LINUX_SWAP, u32 } from './build.js';

const DISK = '01234567-89AB-CDEF-0123-456789ABCDEF';

function catchError(fn: () => unknown): DiskwrightError {
  try {
    fn();
  } catch (error) {
    if (isDiskwrightError(error)) return error;
    throw error;
  }
  throw new Error('expected a DiskwrightError');
}

function sample(sectorSize = 512): Uint8Array {
  return gptImage(
    {
      diskGuid: DISK,
      sectorSize,
      firstUsableLba: 40n,
      partitions: [
        entry(1, 40n, 1039n, { name: 'root fs' }),
        entry(2, 1040n, 1099n, { typeGuid: LINUX_SWAP, attributes: (1n << 63n) | 5n }),
        entry(4, 2000n, 2999n, { typeGuid: EFI_SYSTEM, name: 'EFI ü 😀' }),
      ],
    },
    4096,
  );
}

function flip(image: Uint8Array, offset: number, mask: number): void {
  image[offset] = (image[offset] ?? 0) ^ mask;
}

/** Recomputes the header CRC of the header at byte `at` after a deliberate field edit. */
function fixHeaderCrc(image: Uint8Array, at: number): void {
  const header = image.slice(at, at + 92);
  header.fill(0, 16, 20);
  u32(image, at + 16, crc32(header));
}

describe('GPT partition tables', () => {
  it('reads entries with type, unique GUID, UTF-16 name and attributes, numbered by slot', () => {
    const table = parsePartitionTable(sample());
    expect(table.label).toBe('gpt');
    expect(table.id).toBe(DISK);
    expect(table.firstUsableLba).toBe(40n);
    expect(table.lastUsableLba).toBe(4096n - 34n);
    expect(table.warnings).toEqual([]);
    expect(table.partitions.map((p) => [p.number, p.start, p.size, p.type, p.name, p.attributes])).toEqual([
      [1, 40n, 1000n, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'root fs', 0n],
      [2, 1040n, 60n, LINUX_SWAP, undefined, (1n << 63n) | 5n],
      [4, 2000n, 1000n, EFI_SYSTEM, 'EFI ü 😀', 0n],
    ]);
    expect(table.partitions[0]!.uuid).toBe('00000000-0000-0000-0000-000000000001');
  });

  it('stores GUIDs mixed-endian: the first three fields little-endian', () => {
    const image = sample();
    // Linux filesystem type GUID 0FC63DAF-8483-4772-8E79-3D69D8477DE4 at entry 1 (LBA 2).
    expect([...image.subarray(1024, 1040)].map((b) => b.toString(16).padStart(2, '0')).join('')).toBe('af3dc60f838472478e793d69d8477de4');
  });

  it('accepts 4096-byte logical sectors', () => {
    const table = parsePartitionTable(sample(4096));
    expect(table.sectorSize).toBe(4096);
    expect(table.partitions.map((p) => p.start)).toEqual([40n, 1040n, 2000n]);
  });

  it('uses the backup and warns when the primary header CRC is wrong', () => {
    const image = sample();
    flip(image, 512 + 60, 0xff); // disk GUID byte, CRC now wrong
    const table = parsePartitionTable(image);
    expect(table.id).toBe(DISK);
    expect(table.partitions).toHaveLength(3);
    expect(table.warnings.join('\n')).toMatch(/primary GPT is damaged .*header CRC32.*; the backup at LBA 4095 is used/);
  });

  it('uses the backup when the primary entry array CRC is wrong', () => {
    const image = sample();
    flip(image, 1024 + 56, 0x01); // a name byte in entry 1 of the primary array
    const table = parsePartitionTable(image);
    expect(table.partitions[0]!.name).toBe('root fs');
    expect(table.warnings.join('\n')).toMatch(/primary GPT is damaged \(GPT entry array at LBA 2: CRC32/);
  });

  it('warns when the backup is damaged and keeps the primary', () => {
    const image = sample();
    image[4095 * 512] = 0; // backup signature gone
    const table = parsePartitionTable(image);
    expect(table.partitions).toHaveLength(3);
    expect(table.warnings.join('\n')).toMatch(/backup GPT is damaged .*no "EFI PART" signature.*primary is used/);
  });

  it('lists the protective MBR as dos, as sfdisk does, when both copies are damaged', () => {
    const image = sample();
    flip(image, 512 + 60, 0xff);
    flip(image, 4095 * 512 + 60, 0xff);
    const table = parsePartitionTable(image);
    expect(table.label).toBe('dos');
    expect(table.partitions.map((p) => p.type)).toEqual(['ee']);
    expect(table.warnings[0]).toMatch(/^both GPT copies are unusable: .*; the protective MBR is listed as a dos label, as sfdisk does$/);
  });

  it('refuses an absurd entry count before reading the array, falling back to the protective MBR like sfdisk', () => {
    const image = sample();
    for (const at of [512, 4095 * 512]) {
      u32(image, at + 80, MAX_GPT_ENTRIES + 1);
      fixHeaderCrc(image, at);
    }
    const table = parsePartitionTable(image);
    expect(table.label).toBe('dos');
    expect(table.warnings[0]).toMatch(/partition entries exceed the limit/);
  });

  it('refuses an entry size that is not a multiple of 8 or too large (dos fallback, as sfdisk)', () => {
    for (const size of [100, 130, 1 << 20]) {
      const image = sample();
      for (const at of [512, 4095 * 512]) {
        u32(image, at + 84, size);
        fixHeaderCrc(image, at);
      }
      const table = parsePartitionTable(image);
      expect([table.label, table.warnings[0]]).toEqual(['dos', expect.stringMatching(/entry size \d+ is not a multiple of 8/)]);
    }
  });

  it('reports a truncated GPT (array and backup cut off) and lists the protective MBR like sfdisk', () => {
    const image = sample().slice(0, 1536); // header survives, array and backup gone
    const table = parsePartitionTable(image);
    expect(table.label).toBe('dos');
    expect(table.warnings[0]).toMatch(/primary: GPT header at LBA 1: usable LBAs 40–4062 go past the last LBA of the disk \(2\)/);
  });

  it('formats attributes like sfdisk', () => {
    expect(formatGptAttributes(0n)).toBe('');
    expect(formatGptAttributes(1n | 4n | (1n << 50n) | (1n << 63n))).toBe('RequiredPartition LegacyBIOSBootable GUID:50,63');
    expect(formatGptAttributes(2n)).toBe('NoBlockIOProtocol');
  });

  it('warns about a partition outside the usable area', () => {
    const image = gptImage({ diskGuid: DISK, partitions: [entry(1, 10n, 100n)] });
    expect(parsePartitionTable(image).warnings.join('\n')).toMatch(/partition 1 \(LBA 10–100\) lies outside the usable area/);
  });
});
