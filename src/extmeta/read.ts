import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DiskwrightError, TruncatedError } from '../errors.js';
import type { Disk } from '../disk/types.js';
import { parseSuperblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, type Superblock } from './superblock.js';
import {
  assertBitmapLayoutSupported,
  BG_BLOCK_UNINIT,
  descriptorBlocks,
  descriptorsPerBlock,
  parseGroupDescriptor,
  runsFromBitmap,
  uninitFlagsHonoured,
  uninitGroupRuns,
  type BlockRun,
  type GroupDescriptor,
} from './groups.js';

/** Where the filesystem starts in the image file (bytes; default 0). */
export interface ExtLocation {
  readonly offset?: number | bigint;
}

/** A byte range relative to the start of the filesystem. */
export interface ByteRange {
  readonly start: bigint;
  readonly length: bigint;
}

type Reader = (position: bigint, length: number, what: string) => Uint8Array;

/** Positional reads of `image` (a path, opened and closed here, or an open Disk the caller owns). */
async function withImage<T>(image: string | Disk, fn: (read: Reader) => T): Promise<T> {
  if (typeof image !== 'string') return fn(boundedReader(image.path, BigInt(image.size), (buffer, at) => image.read(buffer, at)));
  let fd: number;
  try {
    fd = openSync(image, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DiskwrightError(code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot open ${image}: ${(error as Error).message}`, { path: image, cause: error });
  }
  try {
    const fill = (buffer: Buffer, at: number): number => {
      let done = 0;
      while (done < buffer.length) {
        const n = readSync(fd, buffer, done, buffer.length - done, at + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    };
    return fn(boundedReader(image, BigInt(fstatSync(fd).size), fill));
  } finally {
    closeSync(fd);
  }
}

/** A reader that checks every request against `size` before reading (lengths come from the image). */
function boundedReader(path: string, size: bigint, fill: (buffer: Buffer, at: number) => number | void): Reader {
  return (position, length, what) => {
    if (position < 0n || position + BigInt(length) > size) {
      throw new TruncatedError(`${what} at byte ${position} lies beyond the end of ${path} (${size} bytes)`, { offset: position, path, hint: 'the image is truncated or the offset is wrong' });
    }
    const buffer = Buffer.alloc(length);
    const done = fill(buffer, Number(position));
    if (typeof done === 'number' && done < length) throw new TruncatedError(`${what}: short read at byte ${position}`, { offset: position, path });
    return buffer;
  };
}

function base(location: ExtLocation): bigint {
  const offset = BigInt(location.offset ?? 0);
  if (offset < 0n) throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected \`offset\` to be non-negative, got \`${offset}\``);
  return offset;
}

/** Reads and parses the ext2/3/4 superblock of the filesystem at `offset` in `image`. */
export async function readSuperblock(image: string | Disk, location: ExtLocation = {}): Promise<Superblock> {
  const offset = base(location);
  return withImage(image, (read) => parseSuperblock(read(offset + BigInt(SUPERBLOCK_OFFSET), SUPERBLOCK_SIZE, 'ext superblock')));
}

/**
 * Byte ranges (relative to the filesystem start) of every allocated block, from the block bitmaps:
 * flex_bg, BLOCK_UNINIT groups and meta_bg are handled; bigalloc and other layouts throw
 * `E_UNSUPPORTED_FEATURE`. Block 0 (boot record / superblock) is always included. Ranges are
 * sorted and merged. `image` is a path or an open Disk (any format, a partition window).
 */
export async function readUsedBlockRanges(image: string | Disk, location: ExtLocation = {}): Promise<ByteRange[]> {
  const offset = base(location);
  return withImage(image, (read) => {
    const sb = parseSuperblock(read(offset + BigInt(SUPERBLOCK_OFFSET), SUPERBLOCK_SIZE, 'ext superblock'));
    assertBitmapLayoutSupported(sb);
    const block = BigInt(sb.blockSize);
    const perBlock = descriptorsPerBlock(sb);
    const descriptors: GroupDescriptor[] = [];
    for (const blockNumber of descriptorBlocks(sb)) {
      if (blockNumber >= sb.blocksCount) throw new DiskwrightError('E_EXTFS', `ext group descriptor block ${blockNumber} lies past the end of the filesystem`, { offset: blockNumber * block });
      const bytes = read(offset + blockNumber * block, sb.blockSize, 'ext group descriptors');
      for (let i = 0; i < perBlock && descriptors.length < sb.groupCount; i++) descriptors.push(parseGroupDescriptor(bytes, i * sb.descSize, sb));
    }
    const honourUninit = uninitFlagsHonoured(sb);
    const runs: BlockRun[] = [{ start: 0n, count: 1n }];
    descriptors.forEach((d, g) => {
      if (honourUninit && d.flags & BG_BLOCK_UNINIT) {
        runs.push(...uninitGroupRuns(sb, g, descriptors));
        return;
      }
      if (d.blockBitmap >= sb.blocksCount || d.blockBitmap === 0n) {
        throw new DiskwrightError('E_EXTFS', `ext group ${g}: block bitmap at block ${d.blockBitmap} is outside the filesystem`, { offset: Number(d.blockBitmap) });
      }
      runs.push(...runsFromBitmap(sb, g, read(offset + d.blockBitmap * block, sb.blockSize, `ext group ${g} block bitmap`)));
    });
    return mergeRuns(runs, block);
  });
}

function mergeRuns(runs: readonly BlockRun[], blockSize: bigint): ByteRange[] {
  const sorted = [...runs].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: { start: bigint; end: bigint }[] = [];
  for (const run of sorted) {
    const start = run.start * blockSize;
    const end = (run.start + run.count) * blockSize;
    const last = out[out.length - 1];
    if (last && start <= last.end) {
      if (end > last.end) last.end = end;
    } else {
      out.push({ start, end });
    }
  }
  return out.map((r) => ({ start: r.start, length: r.end - r.start }));
}
