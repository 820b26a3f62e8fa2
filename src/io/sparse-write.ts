import { ftruncateSync, writeSync } from 'node:fs';
import { dataRuns, HOLE_BLOCK } from './zero.js';

/**
 * Writes a file's bytes in order into a host file, leaving every all-zero 4 KiB block as a hole
 * (`cp --sparse=always`): a file copied out of an image is as sparse as it is there (its holes
 * read as zeros), instead of costing its full size. The end is set by {@link finish}, so a
 * trailing hole costs nothing either. Synchronous writes on the descriptor (a FileHandle's `fd`
 * too): for a tree of small files (fs get) a thread-pool round trip per write and truncate left
 * the main thread idle half the time, and a large file's copy awaited each write anyway.
 */
export class SparseFileWriter {
  private position = 0;

  constructor(private readonly fd: number) {}

  /** Bytes written (or skipped as holes) so far. */
  get bytes(): number {
    return this.position;
  }

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
