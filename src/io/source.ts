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
  /** Largest read this reader serves. */
  readonly maxRead: number;
  private readonly path: string;
  private fd: number;
  private isDirect: boolean;
  /** Backing store; direct reads use `raw` from `shift` so the address is aligned. */
  private raw: Buffer;
  private shift = 0;
  private buffer: Buffer;
  private closed = false;

  private constructor(path: string, fd: number, direct: boolean, size: number, maxRead: number) {
    this.path = path;
    this.fd = fd;
    this.isDirect = direct;
    this.size = size;
    this.maxRead = maxRead;
    const span = direct ? Math.ceil(maxRead / DIRECT_ALIGN) * DIRECT_ALIGN + 2 * DIRECT_ALIGN : maxRead;
    this.raw = Buffer.allocUnsafeSlow(span + (direct ? DIRECT_ALIGN : 0));
    this.buffer = this.raw.subarray(0, span);
  }

  /** True while reads bypass the page cache. */
  get direct(): boolean {
    return this.isDirect;
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
    if (options.direct !== false && constants.O_DIRECT !== undefined) {
      try {
        const directFd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
        closeSync(fd);
        fd = directFd;
        return new SourceReader(path, fd, true, stats.size, maxRead);
      } catch {
        // O_DIRECT refused by this filesystem: buffered reads below.
      }
    }
    return new SourceReader(path, fd, false, stats.size, maxRead);
  }

  /**
   * Reads `length` bytes at `position` (clipped at end of file) and returns a view of them. The view
   * is valid until the next read. Short only at end of file.
   */
  read(position: number, length: number): Buffer {
    if (this.closed) throw new Error('SourceReader used after close');
    if (length > this.maxRead) throw new RangeError(`read of ${length} bytes exceeds the reader's limit of ${this.maxRead}`);
    const end = Math.min(this.size, position + length);
    if (end <= position) return this.buffer.subarray(0, 0);
    if (!this.isDirect) {
      this.fill(0, end - position, position);
      return this.buffer.subarray(0, end - position);
    }
    const alignedStart = Math.floor(position / DIRECT_ALIGN) * DIRECT_ALIGN;
    const alignedEnd = Math.ceil(end / DIRECT_ALIGN) * DIRECT_ALIGN;
    const got = this.fill(0, alignedEnd - alignedStart, alignedStart);
    if (!this.isDirect) return this.read(position, length); // fell back to buffered mid-read
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

  /** Reads until `length` bytes are in or end of file; returns the count. */
  private fill(offset: number, length: number, position: number): number {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd, this.buffer, offset + done, length - done, position + done);
      } catch (error) {
        if (this.isDirect && (error as NodeJS.ErrnoException).code === 'EINVAL') {
          // JS cannot see a buffer's address (malloc aligns to 16) and the kernel checks it only
          // for mapped blocks, not holes: try the next offset, then give up on O_DIRECT.
          this.realign();
          if (!this.isDirect) return 0;
          continue;
        }
        throw ioError(error, this.path, 'read', position + done);
      }
      if (n === 0) break;
      done += n;
      // O_DIRECT at end of file returns a short, unaligned count: nothing more follows.
      if (this.isDirect && n % DIRECT_ALIGN !== 0) break;
    }
    return done;
  }

  private realign(): void {
    this.shift += 16;
    if (this.shift < DIRECT_ALIGN) {
      this.buffer = this.raw.subarray(this.shift, this.shift + this.buffer.length);
      return;
    }
    const fd = openSync(this.path, 'r');
    closeSync(this.fd);
    this.fd = fd;
    this.isDirect = false;
    this.buffer = this.raw.subarray(0, this.maxRead);
  }
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
