import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { DiskwrightError } from '../errors.js';

/**
 * Alignment for O_DIRECT reads (positions, lengths and buffer address). 4096 covers 512e and 4Kn
 * devices alike.
 */
export const DIRECT_ALIGN = 4096;

/**
 * Positional reader of a source image. It prefers O_DIRECT: holes then come back as zeros without
 * populating the page cache (measured here: 6 GiB of holes in 0.15 s instead of 0.5 s) and data
 * is not copied through the page cache. Falls back to buffered reads where O_DIRECT is refused
 * (tmpfs, some FUSE/network filesystems) or no aligned buffer address can be found.
 */
export class SourceReader {
  readonly size: number;
  readonly direct: boolean;
  /** Largest read this reader serves. */
  readonly maxRead: number;
  private readonly fd: number;
  private buffer: Buffer;
  private closed = false;

  private constructor(fd: number, direct: boolean, size: number, buffer: Buffer, maxRead: number) {
    this.fd = fd;
    this.maxRead = maxRead;
    this.direct = direct;
    this.size = size;
    this.buffer = buffer;
  }

  /** Opens `path` for reads of up to `maxRead` bytes; `direct: false` forces buffered reads. */
  static open(path: string, maxRead: number, options: { direct?: boolean } = {}): SourceReader {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw ioError(error, path, 'open');
    }
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      closeSync(fd);
      throw new DiskwrightError('E_INVALID_ARGUMENT', `${path} is not a regular file`, { path, hint: 'give a raw disk image file' });
    }
    if (options.direct !== false && stats.size >= DIRECT_ALIGN) {
      const direct = openDirect(path, maxRead);
      if (direct) {
        closeSync(fd);
        return new SourceReader(direct.fd, true, stats.size, direct.buffer, maxRead);
      }
    }
    return new SourceReader(fd, false, stats.size, Buffer.allocUnsafeSlow(maxRead), maxRead);
  }

  /**
   * Reads `length` bytes at `position` (clipped at end of file) and returns a view of them. The view
   * is valid until the next read. Short only at end of file.
   */
  read(position: number, length: number): Buffer {
    if (this.closed) throw new Error('SourceReader used after close');
    const end = Math.min(this.size, position + length);
    if (end <= position) return this.buffer.subarray(0, 0);
    if (!this.direct) {
      this.ensure(end - position);
      this.fill(this.buffer, 0, end - position, position);
      return this.buffer.subarray(0, end - position);
    }
    const alignedStart = Math.floor(position / DIRECT_ALIGN) * DIRECT_ALIGN;
    const alignedEnd = Math.ceil(end / DIRECT_ALIGN) * DIRECT_ALIGN;
    this.ensure(alignedEnd - alignedStart);
    const got = this.fill(this.buffer, 0, alignedEnd - alignedStart, alignedStart);
    const prefix = position - alignedStart;
    if (got < end - alignedStart) {
      throw new DiskwrightError('E_TRUNCATED', `short read at offset ${position}: the image shrank while it was being read`, { offset: position });
    }
    return this.buffer.subarray(prefix, prefix + (end - position));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private ensure(length: number): void {
    if (this.buffer.length >= length) return;
    if (this.direct) throw new RangeError(`read of ${length} bytes exceeds the reader's buffer of ${this.buffer.length}`);
    this.buffer = Buffer.allocUnsafeSlow(length);
  }

  /** Reads until `length` bytes are in or end of file; returns the count. */
  private fill(buffer: Buffer, offset: number, length: number, position: number): number {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd, buffer, offset + done, length - done, position + done);
      } catch (error) {
        throw ioError(error, undefined, 'read', position + done);
      }
      if (n === 0) break;
      done += n;
      // O_DIRECT at end of file returns a short, unaligned count: nothing more follows.
      if (this.direct && n % DIRECT_ALIGN !== 0) break;
    }
    return done;
  }
}

/** Opens with O_DIRECT and finds a buffer slice whose address the kernel accepts. */
function openDirect(path: string, maxRead: number): { fd: number; buffer: Buffer } | undefined {
  if (constants.O_DIRECT === undefined) return undefined;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
  } catch {
    return undefined;
  }
  const size = Math.ceil(maxRead / DIRECT_ALIGN) * DIRECT_ALIGN + 2 * DIRECT_ALIGN;
  const raw = Buffer.allocUnsafeSlow(size + DIRECT_ALIGN);
  // JS cannot see the buffer's address (malloc aligns to 16): probe offsets with one real read
  // until the kernel accepts the alignment.
  for (let shift = 0; shift < DIRECT_ALIGN; shift += 16) {
    try {
      readSync(fd, raw, shift, DIRECT_ALIGN, 0);
      return { fd, buffer: raw.subarray(shift, shift + size) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') break;
    }
  }
  closeSync(fd);
  return undefined;
}

function ioError(error: unknown, path: string | undefined, op: string, offset?: number): DiskwrightError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return new DiskwrightError('E_NOT_FOUND', `${path ?? 'image'} does not exist`, { path, hint: 'check the image path', cause: error });
  }
  return new DiskwrightError('E_IO', `${op} failed${path ? ` on ${path}` : ''}${offset === undefined ? '' : ` at offset ${offset}`}: ${(error as Error).message}`, {
    path,
    offset,
    cause: error,
  });
}
