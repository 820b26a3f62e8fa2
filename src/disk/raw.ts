import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { DiskwrightError } from '../errors.js';
import { checkRange } from './bounds.js';
import { hostError } from './host-error.js';
import { fileAllocation } from './seek-data.js';
import type { AllocationExtent, Disk } from './types.js';
import { nativeExtensions } from './native.js';
import { startWriteback } from './io-hints.js';

/** Punch-hole support (fallocate PUNCH_HOLE on Linux) from fs-native-extensions; see lock.ts. */
interface Trim {
  trimSync(fd: number, offset: number, length: number): void;
}
let trim: Trim | undefined | null;
function nativeTrim(): Trim | undefined {
  if (trim === undefined) {
    try {
      trim = nativeExtensions<Trim>();
    } catch {
      trim = null;
    }
  }
  return trim ?? undefined;
}

/** Bytes per zero-fill write when the host cannot punch holes. */
const ZERO_SPAN = 1 << 20;
const ZEROS = Buffer.alloc(ZERO_SPAN);

/**
 * A raw image file as a Disk: positional synchronous I/O on one descriptor. `discard` punches a
 * hole where the host filesystem can (so a discarded range costs no space), else writes zeros.
 */
export class RawFileDisk implements Disk {
  readonly format = 'raw' as const;
  private currentSize: number;
  private fdOrClosed: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
    readonly readOnly: boolean,
  ) {
    this.fdOrClosed = fd;
    this.currentSize = fstatSync(fd).size;
  }

  /** Opens `path` (a regular file) read-only or read-write. */
  static open(path: string, options: { readOnly: boolean }): RawFileDisk {
    let fd: number;
    try {
      fd = openSync(path, options.readOnly ? 'r' : 'r+');
    } catch (error) {
      throw hostError(error, path, 'open');
    }
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new DiskwrightError('E_INVALID_ARGUMENT', `${path} is not a regular file`, { path, hint: 'give a disk image file' });
    }
    return new RawFileDisk(path, fd, options.readOnly);
  }

  /** The host descriptor (the copy engine reads raw files with several O_DIRECT reads in flight). */
  get fd(): number {
    if (this.fdOrClosed === undefined) throw new DiskwrightError('E_INVALID_ARGUMENT', `${this.path} is closed`, { path: this.path });
    return this.fdOrClosed;
  }

  get size(): number {
    return this.currentSize;
  }

  read(buffer: Uint8Array, position: number): void {
    checkRange(this.path, this.currentSize, position, buffer.length);
    const fd = this.fd;
    let done = 0;
    try {
      while (done < buffer.length) {
        const n = readSync(fd, buffer, done, buffer.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (error) {
      throw hostError(error, this.path, 'read', position + done);
    }
    // Another process truncated the file under us: what is gone reads as a sparse tail.
    if (done < buffer.length) buffer.fill(0, done);
  }

  write(buffer: Uint8Array, position: number): void {
    this.requireWritable();
    checkRange(this.path, this.currentSize, position, buffer.length);
    const fd = this.fd;
    let done = 0;
    try {
      while (done < buffer.length) done += writeSync(fd, buffer, done, buffer.length - done, position + done);
    } catch (error) {
      throw hostError(error, this.path, 'write', position + done);
    }
  }

  flush(): void {
    if (this.readOnly) return;
    try {
      fdatasyncSync(this.fd);
    } catch (error) {
      throw hostError(error, this.path, 'fdatasync');
    }
  }

  startWriteback(position: number, length: number): void {
    if (this.readOnly) return;
    startWriteback(this.fd, position, length);
  }

  discard(position: number, length: number): void {
    this.requireWritable();
    checkRange(this.path, this.currentSize, position, length);
    if (length === 0) return;
    const native = nativeTrim();
    if (native) {
      try {
        // The kernel zeroes the partial blocks at either end and frees the whole ones.
        native.trimSync(this.fd, position, length);
        return;
      } catch {
        // EOPNOTSUPP and friends: zero-fill below.
      }
    }
    // No punch-hole here: write zeros, but only over what does not read as zeros already (a hole
    // stays a hole, and nothing needs space that was not taken before).
    const current = Buffer.allocUnsafe(Math.min(ZERO_SPAN, length));
    for (const extent of this.allocation(position, length)) {
      if (extent.state === 'zero') continue;
      const stop = extent.position + extent.length;
      for (let at = extent.position; at < stop; at += ZERO_SPAN) {
        const piece = current.subarray(0, Math.min(ZERO_SPAN, stop - at));
        this.read(piece, at);
        if (!piece.equals(ZEROS.subarray(0, piece.length))) this.write(ZEROS.subarray(0, piece.length), at);
      }
    }
  }

  /**
   * Data extents and holes from the host filesystem (lseek SEEK_DATA/SEEK_HOLE, see seek-data.ts),
   * so bulk readers skip holes without reading them. Where the host cannot tell, everything is
   * 'data'. A hole is 'zero'; so is anything past the end of a file another process truncated.
   */
  allocation(position: number, length: number): AllocationExtent[] {
    checkRange(this.path, this.currentSize, position, length);
    if (length === 0) return [];
    return fileAllocation(this.fd, position, length) ?? [{ position, length, state: 'data' }];
  }

  resize(size: number): void {
    this.requireWritable();
    if (!Number.isSafeInteger(size) || size < 0) throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected \`size\` to be a byte count, got \`${size}\``);
    try {
      ftruncateSync(this.fd, size);
    } catch (error) {
      throw hostError(error, this.path, 'resize');
    }
    this.currentSize = size;
  }

  close(): void {
    if (this.fdOrClosed === undefined) return;
    const fd = this.fdOrClosed;
    this.fdOrClosed = undefined;
    closeSync(fd);
  }

  private requireWritable(): void {
    if (this.readOnly) throw new DiskwrightError('E_INVALID_ARGUMENT', `${this.path} was opened read-only`, { path: this.path });
  }
}
