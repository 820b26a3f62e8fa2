import { DiskwrightError } from '../errors.js';

/**
 * Directory entries parsed from a directory's raw contents (ext4 disk layout, "Directory Entries":
 * inode u32, rec_len u16, name_len u8, file_type u8, name). The `ext2fs` package's own readdir
 * leaks an open file (3 blocks + its struct) per call into its fixed 16 MiB WASM heap, so a walk
 * of ~1,000 directories aborted with "Aborted(OOM)"; reading the directory as a file (opened and
 * closed, no leak) and parsing it here gives the same names as libext2fs's `ext2fs_dir_iterate`.
 */

/** Bytes before the name in every entry. */
const DIRENT_HEADER = 8;
/** Offset of name_len in an entry. */
const NAME_LEN_OFFSET = 6;
/** An inline-data directory stores its parent inode in the first 4 bytes of i_block ("..")… */
const INLINE_PARENT_BYTES = 4;
/** …and entries up to the end of i_block (60 bytes); further entries live in the system.data xattr. */
const INLINE_IBLOCK_BYTES = 60;

function damaged(dir: string, offset: number, what: string): DiskwrightError {
  return new DiskwrightError('E_EXTFS', `directory ${dir} is damaged: ${what} at byte ${offset}`, {
    path: dir,
    offset,
    hint: 'the filesystem is damaged: run `diskwright fsck --fix IMAGE`',
  });
}

/** rec_len as libext2fs decodes it (`ext2fs_get_rec_len`): 64 KiB blocks store 65536 as 0 or 65535. */
function recordLength(stored: number, blockSize: number): number {
  if (blockSize < 65536) return stored;
  if (stored === 65535 || stored === 0) return 65536;
  return (stored & 65532) | ((stored & 3) << 16);
}

/** The names in the entries of `bytes[start, end)`, appended to `out`; empty (inode 0) entries skipped. */
function parseRegion(bytes: Uint8Array, start: number, end: number, blockSize: number, dir: string, out: Buffer[]): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = start;
  while (offset < end) {
    if (offset + DIRENT_HEADER > end) throw damaged(dir, offset, 'an entry header runs past its block');
    const inode = view.getUint32(offset, true);
    const length = recordLength(view.getUint16(offset + 4, true), blockSize);
    const nameLength = bytes[offset + NAME_LEN_OFFSET]!;
    if (length < DIRENT_HEADER || length % 4 !== 0 || offset + length > end) throw damaged(dir, offset, `rec_len ${length}`);
    if (DIRENT_HEADER + nameLength > length) throw damaged(dir, offset, `name_len ${nameLength} longer than rec_len ${length}`);
    // inode 0: an unused slot, an htree index node or the metadata_csum tail (all skipped by dir_iterate).
    if (inode !== 0) out.push(Buffer.from(bytes.subarray(offset + DIRENT_HEADER, offset + DIRENT_HEADER + nameLength)));
    offset += length;
  }
}

function allZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i += 1) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * The entry names (raw bytes, "." and ".." included when stored) of a directory whose contents —
 * `size` bytes as the directory file reads — are `bytes`. A size that is a whole number of blocks
 * is the block format (an all-zero block is a hole and holds no entries); any other size is an
 * inline-data directory (i_block then the system.data xattr, at most one inode in size, which is
 * never a whole block), whose ".." is the parent number in its first 4 bytes and is not listed.
 * Throws E_EXTFS on entries that do not fit their block.
 */
export function parseDirectory(bytes: Uint8Array, blockSize: number, dir: string): Buffer[] {
  const out: Buffer[] = [];
  if (bytes.length % blockSize === 0) {
    for (let block = 0; block < bytes.length; block += blockSize) {
      if (allZero(bytes, block, block + blockSize)) continue;
      parseRegion(bytes, block, block + blockSize, blockSize, dir, out);
    }
    return out;
  }
  if (bytes.length < INLINE_IBLOCK_BYTES) throw damaged(dir, 0, `inline directory of ${bytes.length} bytes`);
  parseRegion(bytes, INLINE_PARENT_BYTES, INLINE_IBLOCK_BYTES, blockSize, dir, out);
  parseRegion(bytes, INLINE_IBLOCK_BYTES, bytes.length, blockSize, dir, out);
  return out;
}
