import { close as closeCallback, fdatasync as fdatasyncCallback, write as writeCallback } from 'node:fs';
import { DiskwrightError } from '../../errors.js';
import { openHost } from './raw-file.js';

/**
 * Bytes written between two early write-backs. Large enough that the extra journal commits cost
 * little, small enough that the final fsync finds only the tail of the data still dirty.
 */
const WRITEBACK_BYTES = 64 * 1024 * 1024;

/**
 * A new output file written with positional writes on the libuv pool, several in flight, for the
 * bulk writers of `convert`. Every WRITEBACK_BYTES it starts an fdatasync in the background (at
 * most one at a time): Node has no sync_file_range, and without it the kernel keeps a whole
 * conversion dirty until the final fsync, which then writes it all while nothing else happens.
 * Durability still comes from the caller's fsync before the rename (src/io/atomic.ts).
 */
export class OutputFile {
  private fd: number | undefined;
  private sinceWriteback = 0;
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
    if (this.sinceWriteback >= this.writebackBytes && !this.writeback) {
      this.sinceWriteback = 0;
      // An error seen here is not reported again to the final fsync's descriptor: keep it.
      this.writeback = new Promise<void>((resolve) => {
        fdatasyncCallback(fd, (error) => {
          if (error) this.failure ??= new DiskwrightError('E_IO', `${this.path}: fdatasync failed: ${error.code ?? String(error)}`, { path: this.path, cause: error });
          this.writeback = undefined;
          resolve();
        });
      });
    }
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
