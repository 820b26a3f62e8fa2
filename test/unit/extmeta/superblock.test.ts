import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { featureNames, parseSuperblock, groupHasSuper, runsFromBitmap, type Superblock } from '../../../src/extmeta/index.js';
import { DiskwrightError } from '../../../src/errors.js';

/** A minimal valid ext2 superblock (4 KiB blocks, 2 groups). */
function validSuperblock(): Uint8Array {
  const sb = new Uint8Array(1024);
  const v = new DataView(sb.buffer);
  v.setUint32(0x00, 16384, true); // inodes
  v.setUint32(0x04, 65536, true); // blocks
  v.setUint32(0x18, 2, true); // log block size → 4096
  v.setUint32(0x20, 32768, true);
  v.setUint32(0x24, 32768, true);
  v.setUint32(0x28, 8192, true);
  v.setUint16(0x38, 0xef53, true);
  v.setUint16(0x3a, 1, true);
  v.setUint32(0x4c, 1, true);
  v.setUint16(0x58, 256, true);
  return sb;
}

describe('parseSuperblock', () => {
  it('parses geometry and derives the group count and kind', () => {
    const sb = parseSuperblock(validSuperblock());
    expect(sb).toMatchObject({ blockSize: 4096, blocksCount: 65536n, groupCount: 2, kind: 'ext2', descSize: 32, state: { clean: true, errors: false } });
  });

  it('does not modify its input', () => {
    const bytes = validSuperblock();
    const copy = bytes.slice();
    parseSuperblock(bytes);
    expect(bytes).toEqual(copy);
  });

  it('rejects a wrong magic with E_BAD_SIGNATURE and absurd geometry with E_LIMIT', () => {
    const bad = validSuperblock();
    bad[0x38] = 0;
    expect(() => parseSuperblock(bad)).toThrow(expect.objectContaining({ code: 'E_BAD_SIGNATURE' }));
    const huge = validSuperblock();
    new DataView(huge.buffer).setUint32(0x18, 40, true);
    expect(() => parseSuperblock(huge)).toThrow(expect.objectContaining({ code: 'E_LIMIT' }));
    const zeroGroups = validSuperblock();
    new DataView(zeroGroups.buffer).setUint32(0x20, 0, true);
    expect(() => parseSuperblock(zeroGroups)).toThrow(expect.objectContaining({ code: 'E_LIMIT' }));
  });

  test.prop([fc.uint8Array({ maxLength: 1100 }), fc.boolean()])('any bytes give a superblock or a DiskwrightError', (bytes, withMagic) => {
    if (withMagic && bytes.length >= 0x3a) {
      bytes[0x38] = 0x53;
      bytes[0x39] = 0xef;
    }
    try {
      const sb = parseSuperblock(bytes);
      expect(sb.groupCount).toBeGreaterThan(0);
    } catch (error) {
      expect(error).toBeInstanceOf(DiskwrightError);
    }
  });
});

describe('featureNames', () => {
  it('names bits the way dumpe2fs prints them, unknown ones as FEATURE_<word><bit>', () => {
    expect(featureNames(0x4 | 0x8, 0x2 | 0x80000000, 0x1)).toEqual(['has_journal', 'ext_attr', 'filetype', 'FEATURE_I31', 'sparse_super']);
  });
});

describe('groupHasSuper', () => {
  it('places sparse_super backups in groups 0, 1 and powers of 3, 5 and 7', () => {
    const sb = { ...parseSuperblock(validSuperblock()), featureRoCompat: 1 } as Superblock;
    const groups = Array.from({ length: 130 }, (_, g) => g).filter((g) => groupHasSuper(sb, g));
    expect(groups).toEqual([0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125]);
  });
});

describe('runsFromBitmap', () => {
  test.prop([fc.uint8Array({ minLength: 4096, maxLength: 4096 })])('matches a bit-by-bit model and ignores bits past the end', (bitmap) => {
    const sb = { ...parseSuperblock(validSuperblock()), blocksCount: 32768n + 1000n } as Superblock;
    for (const g of [0, 1]) {
      const first = g * 32768;
      const count = g === 0 ? 32768 : 1000;
      const model: number[] = [];
      for (let i = 0; i < count; i++) if ((bitmap[i >> 3]! >> (i & 7)) & 1) model.push(first + i);
      const fromRuns: number[] = [];
      for (const r of runsFromBitmap(sb, g, bitmap)) for (let b = r.start; b < r.start + r.count; b++) fromRuns.push(Number(b));
      expect(fromRuns).toEqual(model);
    }
  });
});
