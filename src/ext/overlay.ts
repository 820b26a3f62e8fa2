import { readSync } from 'node:fs';
import { DiskwrightError, LimitError } from '../errors.js';

/** Granularity of the copy-on-write overlay (one 4 KiB page; smaller writes read-modify-write). */
export const OVERLAY_CHUNK = 4096;
/** Most bytes a session may stage in memory before it must commit (named limit). */
export const MAX_OVERLAY_BYTES = 3 * 1024 ** 3;

/** A contiguous run of staged bytes at an absolute image offset, as consecutive chunks. */
export interface OverlayRun {
  readonly offset: number;
  readonly length: number;
  readonly chunks: readonly Buffer[];
}

/** Chunks are cut from slabs: one allocation per 256 chunks instead of one each. */
const SLAB_CHUNKS = 256;

/**
 * The disk the WASM libext2fs sees: the filesystem at `base` bytes into an image file, read from
 * the file, with every write kept in memory (copy-on-write) so the image is untouched until the
 * session commits. The `read/write/flush/discard` shape is what the `ext2fs` package expects.
 */
export class OverlayDisk {
  private readonly chunks = new Map<number, Buffer>();
  private stagedBytes = 0;
  private slab: Buffer | undefined;
  private slabUsed = SLAB_CHUNKS;
  writes = 0;

  constructor(
    private readonly fd: number,
    /** Byte offset of the filesystem inside the image. */
    readonly base: number,
    /** Bytes the filesystem may span (reads and writes beyond are errors). */
    readonly length: number,
  ) {}

  /** Bytes currently staged in memory. */
  get size(): number {
    return this.stagedBytes;
  }

  private check(position: number, length: number): void {
    if (position < 0 || length < 0 || position + length > this.length) {
      throw new DiskwrightError('E_OUT_OF_RANGE', `filesystem access at ${position}+${length} is outside its ${this.length}-byte container`, {
        offset: this.base + position,
      });
    }
  }

  private readBase(target: Buffer, targetOffset: number, length: number, position: number): void {
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, target, targetOffset + done, length - done, this.base + position + done);
      if (n === 0) break;
      done += n;
    }
    // Past the end of a short image file reads as zeros, like a sparse tail.
    if (done < length) target.fill(0, targetOffset + done, targetOffset + length);
  }

  /** Copies bytes at `position` (relative to the filesystem) into `buffer`. */
  readInto(buffer: Buffer, bufferOffset: number, length: number, position: number): void {
    this.check(position, length);
    let pos = position;
    let out = bufferOffset;
    const end = position + length;
    while (pos < end) {
      const index = Math.floor(pos / OVERLAY_CHUNK);
      const within = pos - index * OVERLAY_CHUNK;
      const chunk = this.chunks.get(index);
      if (chunk) {
        const n = Math.min(OVERLAY_CHUNK - within, end - pos);
        chunk.copy(buffer, out, within, within + n);
        pos += n;
        out += n;
        continue;
      }
      // Extend over every following chunk that is not staged: one read for the run.
      let runEnd = Math.min((index + 1) * OVERLAY_CHUNK, end);
      while (runEnd < end && !this.chunks.has(runEnd / OVERLAY_CHUNK)) runEnd = Math.min(runEnd + OVERLAY_CHUNK, end);
      this.readBase(buffer, out, runEnd - pos, pos);
      out += runEnd - pos;
      pos = runEnd;
    }
  }

  /** Stages `length` bytes of `buffer` at `position`. */
  writeFrom(buffer: Uint8Array, bufferOffset: number, length: number, position: number): void {
    this.check(position, length);
    this.writes += 1;
    let pos = position;
    let src = bufferOffset;
    const end = position + length;
    while (pos < end) {
      const index = Math.floor(pos / OVERLAY_CHUNK);
      const within = pos - index * OVERLAY_CHUNK;
      const n = Math.min(OVERLAY_CHUNK - within, end - pos);
      let chunk = this.chunks.get(index);
      if (!chunk) {
        if (this.stagedBytes + OVERLAY_CHUNK > MAX_OVERLAY_BYTES) {
          throw new LimitError(`a session may stage at most ${MAX_OVERLAY_BYTES} bytes of changes`, {
            expected: MAX_OVERLAY_BYTES,
            hint: 'split the work into several sessions (each commits on its own)',
          });
        }
        chunk = this.newChunk();
        if (n < OVERLAY_CHUNK) this.readBase(chunk, 0, OVERLAY_CHUNK, index * OVERLAY_CHUNK);
        this.chunks.set(index, chunk);
        this.stagedBytes += OVERLAY_CHUNK;
      }
      chunk.set(buffer.subarray(src, src + n), within);
      pos += n;
      src += n;
    }
  }

  private newChunk(): Buffer {
    if (!this.slab || this.slabUsed === SLAB_CHUNKS) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_CHUNKS * OVERLAY_CHUNK);
      this.slabUsed = 0;
    }
    const chunk = this.slab.subarray(this.slabUsed * OVERLAY_CHUNK, (this.slabUsed + 1) * OVERLAY_CHUNK);
    this.slabUsed += 1;
    return chunk;
  }

  // The ext2fs package's disk interface (async, node-fs-like argument order).
  async read(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Buffer }> {
    this.readInto(buffer, bufferOffset, length, position);
    return { bytesRead: length, buffer };
  }

  async write(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<{ bytesWritten: number; buffer: Buffer }> {
    this.writeFrom(buffer, bufferOffset, length, position);
    return { bytesWritten: length, buffer };
  }

  async flush(): Promise<void> {
    // Nothing to flush: the overlay is committed as a whole after the session.
  }

  async discard(): Promise<void> {
    // Discards are ignored: freed blocks keep their old bytes, as on a disk without TRIM.
  }

  /** Staged changes as contiguous runs at absolute image offsets, in ascending order. */
  *runs(maxRunBytes = 1024 * OVERLAY_CHUNK): Generator<OverlayRun> {
    const indexes = [...this.chunks.keys()].sort((a, b) => a - b);
    let i = 0;
    while (i < indexes.length) {
      const first = indexes[i]!;
      let count = 1;
      while (i + count < indexes.length && indexes[i + count] === first + count && (count + 1) * OVERLAY_CHUNK <= maxRunBytes) count += 1;
      const chunks: Buffer[] = [];
      for (let k = 0; k < count; k += 1) chunks.push(this.chunks.get(first + k)!);
      const start = first * OVERLAY_CHUNK;
      // Never write past the filesystem's container (a partial last chunk).
      const length = Math.min(count * OVERLAY_CHUNK, this.length - start);
      const last = chunks.length - 1;
      const lastLength = length - last * OVERLAY_CHUNK;
      if (lastLength < OVERLAY_CHUNK) chunks[last] = chunks[last]!.subarray(0, lastLength);
      yield { offset: this.base + start, length, chunks };
      i += count;
    }
  }

  /** Drops every staged change. */
  clear(): void {
    this.chunks.clear();
    this.slab = undefined;
    this.slabUsed = SLAB_CHUNKS;
    this.stagedBytes = 0;
  }
}
