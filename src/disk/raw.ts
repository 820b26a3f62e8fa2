import { closeSync, constants, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { DiskwrightError } from '../errors.js';
import { checkRange } from './bounds.js';
import { hostError } from './host-error.js';
import { fileAllocation } from './seek-data.js';
import type { AllocationExtent, Disk } from './types.js';
import { nativeExtensions } from './native.js';
import { startWriteback } from './io-hints.js';
import { libc } from './libc.js';

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

/** O_DIRECT alignment of {@link RawFileDisk.writeBulk} (positions, lengths, buffer address): covers 512e and 4Kn devices. */
const DIRECT_PAGE = 4096;

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
  /** {@link writeBulk}'s O_DIRECT descriptor: undefined until first needed, null where refused. */
  private direct: number | null | undefined;

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

  /**
   * Writes bulk file data (fs put's copy into free blocks): its whole 4 KiB pages with O_DIRECT
   * from a 4 KiB-aligned buffer, the rest as {@link write} plus write-back started. A buffered
   * write of fresh data first has the kernel find and fill page-cache pages for it, and on this VM
   * that ran at 300–500 MiB/s (new pages come from the hypervisor), while O_DIRECT writes went to
   * the device at ~1.7 GiB/s: a 100 MiB put into the seed's p1 took 0.32 s buffered, 0.16 s direct,
   * host debugfs + sync 0.24 s (5 interleaved rounds, medians; 800 MiB: 3.9 s, 1.4 s, 3.4 s).
   * O_DIRECT is coherent with the page cache (the kernel writes back and drops cached pages of the
   * range first) and {@link flush} (fdatasync of the file, whichever descriptor wrote it) makes it
   * durable with the rest. Where the host refuses O_DIRECT (tmpfs before Linux 6.6, some FUSE
   * and network filesystems: EINVAL) the rest is written buffered, and so is everything after.
   */
  writeBulk(buffer: Uint8Array, position: number): void {
    this.requireWritable();
    checkRange(this.path, this.currentSize, position, buffer.length);
    const direct = position % DIRECT_PAGE === 0 ? this.directDescriptor() : undefined;
    const whole = buffer.length - (buffer.length % DIRECT_PAGE);
    const sys = libc();
    let done = 0;
    if (direct !== undefined && whole > 0 && sys !== undefined && (sys.address(buffer) % BigInt(DIRECT_PAGE)) === 0n) {
      try {
        while (done < whole) done += writeSync(direct, buffer, done, whole - done, position + done);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw hostError(error, this.path, 'write', position + done);
        // Refused after all (an alignment this device wants): buffered from here on.
        this.direct = null;
        closeSync(direct);
      }
    }
    if (done < buffer.length) {
      const rest = buffer.subarray(done);
      this.write(rest, position + done);
      this.startWriteback(position + done, rest.length);
    }
  }

  /** The O_DIRECT descriptor of this file for {@link writeBulk}; undefined where the host refuses one. */
  private directDescriptor(): number | undefined {
    if (this.direct === undefined) {
      try {
        // The same open file (never a second open by name: the path may have been replaced).
        this.direct = openSync(`/proc/self/fd/${this.fd}`, constants.O_WRONLY | constants.O_DIRECT);
      } catch {
        this.direct = null;
      }
    }
    return this.direct ?? undefined;
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
    if (typeof this.direct === 'number') closeSync(this.direct);
    this.direct = undefined;
    closeSync(fd);
  }

  private requireWritable(): void {
    if (this.readOnly) throw new DiskwrightError('E_INVALID_ARGUMENT', `${this.path} was opened read-only`, { path: this.path });
  }
}
