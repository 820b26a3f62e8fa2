import { ftruncateSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dataRuns, HOLE_BLOCK } from './zero.js';

/**
 * Writes a file's bytes in order into a host file, leaving every all-zero 4 KiB block as a hole
 * (`cp --sparse=always`): a file copied out of an image is as sparse as it is there (its holes
 * read as zeros), instead of costing its full size. The end is set by {@link finish}, so a
 * trailing hole costs nothing either.
 */
export class SparseFileWriter {
  private position = 0;

  constructor(private readonly handle: FileHandle) {}

  /** Bytes written (or skipped as holes) so far. */
  get bytes(): number {
    return this.position;
  }

  /** Appends `chunk`; its all-zero blocks (aligned to the file, not the chunk) are skipped. */
  async write(chunk: Uint8Array): Promise<void> {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    for (const run of dataRuns(bytes, bytes.length, HOLE_BLOCK, this.position)) {
      await writeAll(this.handle, bytes.subarray(run.start, run.start + run.length), this.position + run.start);
    }
    this.position += bytes.length;
  }

  /** Sets the file's size to the bytes written (a trailing hole becomes part of the file). */
  async finish(): Promise<void> {
    await this.handle.truncate(this.position);
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * {@link SparseFileWriter} on a file descriptor with synchronous writes: for trees of small files
 * (fs get), where a thread-pool round trip per write, truncate, chmod and utimes was half the time.
 */
export class SparseFdWriter {
  private position = 0;

  constructor(private readonly fd: number) {}

  /** Appends `chunk`; its all-zero blocks (aligned to the file, not the chunk) are skipped. */
  write(chunk: Uint8Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    for (const run of dataRuns(bytes, bytes.length, HOLE_BLOCK, this.position)) {
      for (let done = 0; done < run.length; ) done += writeSync(this.fd, bytes, run.start + done, run.length - done, this.position + run.start + done);
    }
    this.position += bytes.length;
  }

  /** Sets the file's size to the bytes written (a trailing hole becomes part of the file). */
  finish(): void {
    ftruncateSync(this.fd, this.position);
  }
}
