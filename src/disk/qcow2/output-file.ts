import { close as closeCallback, fdatasync as fdatasyncCallback, write as writeCallback } from 'node:fs';
import { DiskwrightError } from '../../errors.js';
import { libc } from '../libc.js';
import { openHost } from './raw-file.js';

/**
 * Bytes written between two early write-backs. They only bound the dirty data the final fsync
 * (which a Ctrl-C has to wait for) finds: on this VM a write-back every 64 MiB made the seed's
 * conversion slower, with sync_file_range (median 1.77 s against 1.60 s without, 7 rounds) and
 * more so with fdatasync (2.00 s), as the disk then interleaves the write-back with the reads.
 * The kernel's own background write-back starts at 10 % of memory anyway.
 */
const WRITEBACK_BYTES = 1024 * 1024 * 1024;
/** sync_file_range(2): start write-back of the range's dirty pages, do not wait for it. */
const SYNC_FILE_RANGE_WRITE = 2;

/**
 * A new output file written with positional writes on the libuv pool, several in flight, for the
 * bulk writers of `convert`. Every WRITEBACK_BYTES it starts the write-back of the file's dirty
 * pages in the background (at most one at a time) with sync_file_range(WRITE), which neither
 * commits the journal nor flushes the device's cache (fdatasync did both); without libc (koffi)
 * it falls back to a background fdatasync. Durability comes only from the caller's fsync before
 * the rename (src/io/atomic.ts); a write-back error is left for that fsync to report:
 * sync_file_range without WAIT does not consume it, and a descriptor opened later still sees an
 * error nobody has seen (errseq).
 */
export class OutputFile {
  private fd: number | undefined;
  private sinceWriteback = 0;
  /** False once sync_file_range failed (a filesystem without it): no more early write-backs. */
  private syncRange = true;
  private writeback: Promise<void> | undefined;
  private failure: DiskwrightError | undefined;

  private constructor(readonly path: string, fd: number, private readonly writebackBytes: number) {
    this.fd = fd;
  }

  /** Creates `path`, which must not exist. `writebackBytes`: bytes between early write-backs (tests make it small). */
  static create(path: string, options: { readonly writebackBytes?: number } = {}): OutputFile {
    return new OutputFile(path, openHost(path, 'wx'), options.writebackBytes ?? WRITEBACK_BYTES);
  }

  /** The descriptor, for ftruncate and the like. */
  get descriptor(): number {
    if (this.fd === undefined) throw new DiskwrightError('E_IO', `${this.path}: used after close`, { path: this.path });
    return this.fd;
  }

  /** Writes all of `buffer` at `position`; resolves when `buffer` may be reused. */
  async write(buffer: Uint8Array, position: number): Promise<void> {
    if (this.failure) throw this.failure;
    const fd = this.descriptor;
    let done = 0;
    try {
      while (done < buffer.length) {
        done += await new Promise<number>((resolve, reject) => {
          writeCallback(fd, buffer, done, buffer.length - done, position + done, (error, n) => (error ? reject(error) : resolve(n)));
        });
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new DiskwrightError('E_IO', `${this.path}: write at ${position + done} failed: ${code ?? String(error)}`, { path: this.path, cause: error });
    }
    this.sinceWriteback += buffer.length;
    if (this.sinceWriteback >= this.writebackBytes && !this.writeback && this.syncRange) {
      this.sinceWriteback = 0;
      this.writeback = this.startWriteback(fd);
    }
  }

  /** Starts the write-back of everything written since the last one; resolves when it was submitted. */
  private startWriteback(fd: number): Promise<void> {
    const sys = libc();
    if (!sys) {
      return new Promise<void>((resolve) => {
        fdatasyncCallback(fd, (error) => {
          // An error seen here is not reported again to the final fsync's descriptor: keep it.
          if (error) this.failure ??= new DiskwrightError('E_IO', `${this.path}: fdatasync failed: ${error.code ?? String(error)}`, { path: this.path, cause: error });
          this.writeback = undefined;
          resolve();
        });
      });
    }
    return new Promise<void>((resolve) => {
      // The whole file (length 0: to its end): pages already being written are skipped, and
      // writes that finished out of order are not left behind.
      sys.syncFileRange(fd, 0, 0, SYNC_FILE_RANGE_WRITE, (result) => {
        if (result !== 0) this.syncRange = false;
        this.writeback = undefined;
        resolve();
      });
    });
  }

  /** Waits for a background write-back; throws what it failed with. */
  async settle(): Promise<void> {
    await this.writeback;
    if (this.failure) throw this.failure;
  }

  /** Closes the file once a background write-back has finished (idempotent). */
  async close(): Promise<void> {
    await this.writeback;
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    await new Promise<void>((resolve) => closeCallback(fd, () => resolve()));
  }
}
