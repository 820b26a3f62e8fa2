import { describe, expect, it } from 'vitest';
import { assertExtSupported, parseExtSuperblock } from '../../../src/ext/index.js';

/** A minimal 1024-byte ext4-like superblock with the given feature words. */
function superblock(fields: { compat?: number; incompat?: number; roCompat?: number; state?: number; magic?: number; logBlockSize?: number } = {}): Uint8Array {
  const sb = Buffer.alloc(1024);
  sb.writeUInt32LE(8192, 0x00); // inodes
  sb.writeUInt32LE(65536, 0x04); // blocks
  sb.writeUInt32LE(fields.logBlockSize ?? 2, 0x18);
  sb.writeUInt32LE(fields.logBlockSize ?? 2, 0x1c); // log cluster size = log block size, as mke2fs writes it
  sb.writeUInt32LE(32768, 0x20);
  sb.writeUInt32LE(32768, 0x24); // clusters per group
  sb.writeUInt32LE(8192, 0x28);
  sb.writeUInt16LE(fields.magic ?? 0xef53, 0x38);
  sb.writeUInt16LE(fields.state ?? 1, 0x3a);
  sb.writeUInt32LE(1, 0x4c);
  sb.writeUInt16LE(256, 0x58);
  sb.writeUInt32LE(fields.compat ?? 0x4, 0x5c);
  sb.writeUInt32LE(fields.incompat ?? 0x2c2, 0x60);
  sb.writeUInt32LE(fields.roCompat ?? 0x46b, 0x64);
  sb.writeUInt16LE(64, 0xfe); // s_desc_size: 64bit is on in the default incompat word
  return sb;
}

describe('parseExtSuperblock', () => {
  it('reads block size, counts, journal and checksum flags', () => {
    const g = parseExtSuperblock(superblock());
    expect(g).toMatchObject({ blockSize: 4096, blocksCount: 65536n, inodeSize: 256, hasJournal: true, needsRecovery: false, metadataCsum: true });
  });

  it('names a missing magic as E_BAD_SIGNATURE and short input as E_TRUNCATED', () => {
    expect(() => parseExtSuperblock(superblock({ magic: 0x1234 }))).toThrow(expect.objectContaining({ code: 'E_BAD_SIGNATURE' }));
    expect(() => parseExtSuperblock(new Uint8Array(100))).toThrow(expect.objectContaining({ code: 'E_TRUNCATED' }));
    expect(() => parseExtSuperblock(superblock({ logBlockSize: 40 }))).toThrow(expect.objectContaining({ code: 'E_EXTFS' }));
  });
});

describe('assertExtSupported', () => {
  const check = (fields: Parameters<typeof superblock>[0], write: boolean, replayJournal = false): void =>
    assertExtSupported(parseExtSuperblock(superblock(fields)), 'disk.img', { write, replayJournal });

  it('accepts mke2fs 1.47 ext4 defaults for reading and writing', () => {
    expect(() => check({}, true)).not.toThrow();
  });

  it('refuses to write a journal that needs recovery unless asked to replay, with the fsck hint', () => {
    expect(() => check({ incompat: 0x2c2 | 0x4 }, true)).toThrow(
      expect.objectContaining({ code: 'E_NEEDS_RECOVERY', hint: expect.stringContaining('diskwright fsck --fix disk.img') }),
    );
    expect(() => check({ incompat: 0x2c2 | 0x4 }, false)).not.toThrow();
    expect(() => check({ incompat: 0x2c2 | 0x4 }, true, true)).not.toThrow();
  });

  it('refuses unknown incompat features (casefold, compression) even for reading', () => {
    expect(() => check({ incompat: 0x2c2 | 0x20000 }, false)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE', message: expect.stringContaining('casefold') }));
    expect(() => check({ incompat: 0x2c2 | 0x1 }, false)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE' }));
  });

  it('refuses bigalloc always and quota for writing (libext2fs 1.44 would leave the quota files stale)', () => {
    expect(() => check({ roCompat: 0x46b | 0x200 }, false)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE', message: expect.stringContaining('bigalloc') }));
    expect(() => check({ roCompat: 0x46b | 0x100 }, true)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE', hint: expect.stringContaining('tune2fs -O ^quota') }));
    expect(() => check({ roCompat: 0x46b | 0x100 }, false)).not.toThrow();
  });

  it('refuses to write with mmp, unknown ro_compat features (orphan_present, verity) or recorded errors', () => {
    expect(() => check({ incompat: 0x2c2 | 0x100 }, true)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE' }));
    expect(() => check({ incompat: 0x2c2 | 0x100 }, false)).not.toThrow();
    expect(() => check({ roCompat: 0x46b | 0x10000 }, true)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE', message: expect.stringContaining('orphan_present') }));
    expect(() => check({ roCompat: 0x46b | 0x8000 }, true)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE' }));
    expect(() => check({ state: 3 }, true)).toThrow(expect.objectContaining({ code: 'E_EXTFS' }));
  });
});
