import type { FileHandle } from 'node:fs/promises';

/**
 * Writes a file's bytes in order into a host file, leaving every all-zero 4 KiB block as a hole
 * (`cp --sparse=always`): a file copied out of an image is as sparse as it is there (its holes
 * read as zeros), instead of costing its full size. The end is set by {@link finish}, so a
 * trailing hole costs nothing either.
 */

/** Hole granularity: the page and the usual host filesystem block. */
const HOLE_BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(HOLE_BLOCK);

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
    let at = 0;
    while (at < bytes.length) {
      const fileAt = this.position + at;
      // Up to the next block boundary of the file, then whole blocks.
      const blockEnd = Math.min(bytes.length, at + HOLE_BLOCK - (fileAt % HOLE_BLOCK));
      const zero = isZero(bytes, at, blockEnd);
      let stop = blockEnd;
      while (stop < bytes.length) {
        const next = Math.min(bytes.length, stop + HOLE_BLOCK);
        if (isZero(bytes, stop, next) !== zero) break;
        stop = next;
      }
      if (!zero) await writeAll(this.handle, bytes.subarray(at, stop), fileAt);
      at = stop;
    }
    this.position += bytes.length;
  }

  /** Sets the file's size to the bytes written (a trailing hole becomes part of the file). */
  async finish(): Promise<void> {
    await this.handle.truncate(this.position);
  }
}

function isZero(bytes: Buffer, from: number, to: number): boolean {
  return bytes.compare(ZERO_BLOCK, 0, to - from, from, to) === 0;
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
