import { describe, expect, it } from 'vitest';
import { parseDirectory } from '../../../src/ext/dirent.js';

/** One directory entry: inode, rec_len, name (file_type 1). */
function entry(inode: number, recLen: number, name: string): Buffer {
  const bytes = Buffer.alloc(recLen);
  bytes.writeUInt32LE(inode, 0);
  bytes.writeUInt16LE(recLen, 4);
  bytes[6] = Buffer.byteLength(name);
  bytes[7] = 1;
  bytes.write(name, 8);
  return bytes;
}

const names = (list: Buffer[]): string[] => list.map((b) => b.toString('utf8'));

describe('parseDirectory', () => {
  it('lists the used entries of every block and skips empty slots, holes and index nodes', () => {
    const block1 = Buffer.concat([entry(2, 12, '.'), entry(2, 12, '..'), entry(0, 16, 'gone'), entry(12, 1024 - 40, 'a')]);
    const hole = Buffer.alloc(1024);
    const index = entry(0, 1024, '');
    const block3 = Buffer.concat([entry(13, 512, 'bee'), entry(14, 500, 'c'), entry(0, 12, '')]);
    expect(names(parseDirectory(Buffer.concat([block1, hole, index, block3]), 1024, '/d'))).toEqual(['.', '..', 'a', 'bee', 'c']);
  });

  it('reads an inline-data directory: parent number, i_block entries, then the xattr part', () => {
    const parent = Buffer.alloc(4);
    parent.writeUInt32LE(2, 0);
    const bytes = Buffer.concat([parent, entry(12, 20, 'one'), entry(0, 36, ''), entry(13, 16, 'two')]);
    expect(names(parseDirectory(bytes, 4096, '/i'))).toEqual(['one', 'two']);
  });

  it('decodes the rec_len of 64 KiB blocks as libext2fs does (stored 0 or 65535 mean 65536)', () => {
    for (const stored of [0, 65535]) {
      const block = Buffer.alloc(65536);
      entry(11, 12, 'x').copy(block, 0);
      block.writeUInt16LE(stored, 4);
      expect(names(parseDirectory(block, 65536, '/big'))).toEqual(['x']);
    }
  });

  it.each([
    ['a rec_len of 0', entry(12, 1024, 'a').fill(0, 4, 6)],
    ['a rec_len past the block', (() => { const b = entry(12, 1024, 'a'); b.writeUInt16LE(2048, 4); return b; })()],
    ['a rec_len not a multiple of 4', (() => { const b = entry(12, 1024, 'a'); b.writeUInt16LE(1022, 4); return b; })()],
    ['a name longer than its record', Buffer.concat([(() => { const b = entry(12, 12, 'abcd'); b[6] = 200; return b; })(), entry(0, 1012, '')])],
  ])('refuses a block with %s as a damaged directory (E_EXTFS), never loops', (_what, block) => {
    expect(() => parseDirectory(block, 1024, '/bad')).toThrow(expect.objectContaining({ code: 'E_EXTFS' }));
  });
});
