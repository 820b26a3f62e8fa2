import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { DiskwrightError } from '../../errors.js';
import type { AllocationExtent, Disk } from '../types.js';

/**
 * The smallest raw-file Disk the qcow2 driver needs for raw backing files (read-only). The block
 * layer's RawFileDisk (src/disk, issue 9) replaces it through `openBacking` once it is there.
 */
export class RawBackingFile implements Disk {
  readonly format = 'raw' as const;
  readonly readOnly = true;
  readonly size: number;
  private fd: number | undefined;

  constructor(readonly path: string) {
    this.fd = openHost(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  read(buffer: Uint8Array, position: number): void {
    if (position < 0 || position + buffer.length > this.size) {
      throw new DiskwrightError('E_OUT_OF_RANGE', `${this.path}: read of ${buffer.length} bytes at ${position} is past the end (${this.size})`, { path: this.path, offset: position });
    }
    readFully(this.descriptor(), buffer, position, this.path);
  }

  write(): void {
    throw new DiskwrightError('E_IO', `${this.path}: a backing file is never written`, { path: this.path });
  }

  flush(): void {}

  discard(): void {
    this.write();
  }

  allocation(position: number, length: number): AllocationExtent[] {
    return length > 0 ? [{ position, length, state: 'data' }] : [];
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private descriptor(): number {
    if (this.fd === undefined) throw new DiskwrightError('E_IO', `${this.path}: used after close`, { path: this.path });
    return this.fd;
  }
}

/** Opens a host file, turning errno into one DiskwrightError line. */
export function openHost(path: string, flags: string): number {
  try {
    return openSync(path, flags);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DiskwrightError(code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot open ${path}: ${code ?? String(error)}`, { path, cause: error });
  }
}

/** Reads all of `buffer` at `position`; bytes past the end of the file read as zeros. */
export function readFully(fd: number, buffer: Uint8Array, position: number, path: string): number {
  let done = 0;
  while (done < buffer.length) {
    let n: number;
    try {
      n = readSync(fd, buffer, done, buffer.length - done, position + done);
    } catch (error) {
      throw new DiskwrightError('E_IO', `${path}: read at ${position + done} failed: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { path, cause: error });
    }
    if (n === 0) break;
    done += n;
  }
  if (done < buffer.length) buffer.fill(0, done);
  return done;
}

/** Writes all of `buffer` at `position`. */
export function writeFully(fd: number, buffer: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < buffer.length) {
    try {
      done += writeSync(fd, buffer, done, buffer.length - done, position + done);
    } catch (error) {
      throw new DiskwrightError('E_IO', `${path}: write at ${position + done} failed: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { path, cause: error });
    }
  }
}

/** fdatasync with a DiskwrightError. */
export function syncHost(fd: number, path: string): void {
  try {
    fsyncSync(fd);
  } catch (error) {
    throw new DiskwrightError('E_IO', `${path}: fsync failed: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { path, cause: error });
  }
}
