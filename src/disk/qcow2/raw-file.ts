// Host-file helpers of the qcow2 driver: every errno becomes one DiskwrightError line naming the file.
import { fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { DiskwrightError } from '../../errors.js';

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

/** ftruncate with a DiskwrightError. */
export function truncateHost(fd: number, size: number, path: string): void {
  try {
    ftruncateSync(fd, size);
  } catch (error) {
    throw new DiskwrightError('E_IO', `${path}: truncate to ${size} failed: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { path, cause: error });
  }
}
