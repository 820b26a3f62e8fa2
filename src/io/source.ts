import { closeSync, constants, fstatSync, openSync, read as readCallback } from 'node:fs';
import { libc } from '../disk/libc.js';
import { DiskwrightError } from '../errors.js';

/**
 * Alignment for O_DIRECT reads (positions, lengths and buffer address). 4096 covers 512e and 4Kn
 * devices alike.
 */
export const DIRECT_ALIGN = 4096;
/** Buffer addresses are tried in these steps (malloc aligns to 16) when the kernel refuses one. */
const ADDRESS_STEP = 16;

function readAt(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    readCallback(fd, buffer, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
  });
}

/** One read buffer; each concurrent reader of a {@link SourceReader} has its own. */
export class ReadLane {
  readonly raw: Buffer;
  shift = 0;
  /** True when {@link buffer} is known to start at a DIRECT_ALIGN-aligned address. */
  readonly aligned: boolean;
  constructor(readonly span: number) {
    this.raw = Buffer.allocUnsafeSlow(span + DIRECT_ALIGN);
    // Start at an aligned address where it is known: malloc returns 16 mod 4096 here, and every
    // refused O_DIRECT read costs a pool round trip (31 per lane on a 512-byte-sector disk).
    const address = libc()?.address(this.raw);
    if (address !== undefined) this.shift = Number((BigInt(DIRECT_ALIGN) - (address % BigInt(DIRECT_ALIGN))) % BigInt(DIRECT_ALIGN));
    this.aligned = address !== undefined;
  }
  get buffer(): Buffer {
    return this.raw.subarray(this.shift, this.shift + this.span);
  }
}

/**
 * Positional reader of a source image. It prefers O_DIRECT: holes then come back as zeros without
 * populating the page cache (measured here: 6 GiB of holes in 0.15 s; buffered hole reads took
 * 0.5 s warm and 10–40 s when the kernel was short of memory) and data is not copied through the
 * page cache. Falls back to buffered reads where O_DIRECT is refused (tmpfs, some FUSE/network
 * filesystems) or no buffer address is accepted.
 */
export class SourceReader {
  readonly size: number;
  /** Largest read this reader serves. */
  readonly maxRead: number;
  private readonly path: string;
  private readonly bufferedFd: number;
  /** False when the buffered descriptor belongs to a Disk (it stays open after close). */
  private readonly ownsBufferedFd: boolean;
  private directFd: number | undefined;
  /** Direct descriptors given up on; lanes may still have reads in flight on them until close. */
  private readonly retired: number[] = [];
  private closed = false;

  private constructor(path: string, bufferedFd: number, directFd: number | undefined, size: number, maxRead: number, ownsBufferedFd = true) {
    this.path = path;
    this.bufferedFd = bufferedFd;
    this.ownsBufferedFd = ownsBufferedFd;
    this.directFd = directFd;
    this.size = size;
    this.maxRead = maxRead;
  }

  /** True while reads bypass the page cache. */
  get direct(): boolean {
    return this.directFd !== undefined;
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
    let directFd: number | undefined;
    if (options.direct !== false && constants.O_DIRECT !== undefined) {
      try {
        directFd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
      } catch {
        // O_DIRECT refused by this filesystem: buffered reads.
      }
    }
    return new SourceReader(path, fd, directFd, stats.size, maxRead);
  }

  /**
   * A reader of the file under an open raw Disk: buffered reads share the Disk's descriptor (left
   * open on close), O_DIRECT reads reopen that same file through /proc/self/fd, never by name, so
   * a file renamed over the path meanwhile is not read.
   */
  static forRawDisk(disk: { readonly fd: number; readonly path: string; readonly size: number }, maxRead: number, options: { direct?: boolean } = {}): SourceReader {
    let directFd: number | undefined;
    if (options.direct !== false && constants.O_DIRECT !== undefined) {
      try {
        directFd = openSync(`/proc/self/fd/${disk.fd}`, constants.O_RDONLY | constants.O_DIRECT);
      } catch {
        // O_DIRECT refused (or no /proc): buffered reads.
      }
    }
    return new SourceReader(disk.path, disk.fd, directFd, disk.size, maxRead, false);
  }

  /** A buffer for one concurrent reader. */
  createLane(): ReadLane {
    return new ReadLane(Math.ceil(this.maxRead / DIRECT_ALIGN) * DIRECT_ALIGN + 2 * DIRECT_ALIGN);
  }

  /**
   * Reads `length` bytes at `position` (clipped at end of file) into `lane` and returns a view of
   * them, valid until the lane's next read. Short only at end of file.
   */
  async read(lane: ReadLane, position: number, length: number): Promise<Buffer> {
    if (this.closed) throw new Error('SourceReader used after close');
    if (length > this.maxRead) throw new RangeError(`read of ${length} bytes exceeds the reader's limit of ${this.maxRead}`);
    const end = Math.min(this.size, position + length);
    if (end <= position) return lane.buffer.subarray(0, 0);
    for (;;) {
      const fd = this.directFd;
      if (fd === undefined) {
        const got = await this.fill(this.bufferedFd, lane.buffer, end - position, position, false);
        return lane.buffer.subarray(0, got);
      }
      const alignedStart = Math.floor(position / DIRECT_ALIGN) * DIRECT_ALIGN;
      const alignedEnd = Math.ceil(end / DIRECT_ALIGN) * DIRECT_ALIGN;
      try {
        const got = await this.fill(fd, lane.buffer, alignedEnd - alignedStart, alignedStart, true);
        const prefix = position - alignedStart;
        return lane.buffer.subarray(prefix, prefix + Math.max(0, Math.min(got, end - alignedStart) - prefix));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw ioError(error, this.path, 'read', position);
        // JS cannot see a buffer's address and the kernel checks its alignment only for mapped
        // blocks, not holes: try the next address, and give up on O_DIRECT when none works.
        lane.shift += ADDRESS_STEP;
        if (lane.shift >= DIRECT_ALIGN) {
          lane.shift = 0;
          this.dropDirect();
        }
      }
    }
  }

  /**
   * Reads `target.length` bytes at `position` straight into `target` with O_DIRECT (no copy
   * through a lane): for callers whose buffer is at an aligned address (a {@link ReadLane.aligned}
   * lane at a DIRECT_ALIGN multiple). Returns the count (short only at end of file), or undefined
   * when this read cannot be direct — no O_DIRECT descriptor, an unaligned position or length, or
   * the kernel refused it — and the caller reads through a lane instead.
   */
  async readDirect(target: Buffer, position: number): Promise<number | undefined> {
    if (this.closed) throw new Error('SourceReader used after close');
    const fd = this.directFd;
    if (fd === undefined || position % DIRECT_ALIGN !== 0 || target.length % DIRECT_ALIGN !== 0) return undefined;
    try {
      return await this.fill(fd, target, target.length, position, true);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
      throw ioError(error, this.path, 'read', position);
    }
  }

  /**
   * Reads `target.length` bytes at `position` into `target` itself: with O_DIRECT where
   * {@link readDirect} can, else through the page cache straight into `target` (no lane, no
   * copy). Returns the count, short only at end of file.
   */
  async readInto(target: Buffer, position: number): Promise<number> {
    // readDirect refuses a closed reader; undefined: no O_DIRECT for this read.
    const direct = await this.readDirect(target, position);
    if (direct !== undefined) return direct;
    return this.fill(this.bufferedFd, target, target.length, position, false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsBufferedFd) closeSync(this.bufferedFd);
    this.dropDirect();
    for (const fd of this.retired.splice(0)) closeSync(fd);
  }

  private dropDirect(): void {
    if (this.directFd === undefined) return;
    this.retired.push(this.directFd);
    this.directFd = undefined;
  }

  /** Reads until `length` bytes are in or end of file; returns the count. */
  private async fill(fd: number, buffer: Buffer, length: number, position: number, direct: boolean): Promise<number> {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = await readAt(fd, buffer, done, length - done, position + done);
      } catch (error) {
        if (direct) throw error;
        throw ioError(error, this.path, 'read', position + done);
      }
      if (n === 0) break;
      done += n;
      // O_DIRECT at end of file returns a short, unaligned count: nothing more follows.
      if (direct && n % DIRECT_ALIGN !== 0) break;
    }
    return done;
  }
}

function ioError(error: unknown, path: string | undefined, op: string, offset?: number): DiskwrightError {
  if (error instanceof DiskwrightError) return error;
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
