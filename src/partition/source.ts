/**
 * Sans-I/O plumbing: table readers are generators that yield the byte ranges they need and get
 * the bytes back, so one parser serves an in-memory buffer (pure, property-tested) and a file
 * (positional reads of only the sectors needed).
 */
import type { FileHandle } from 'node:fs/promises';
import type { Disk } from '../disk/types.js';
import { DiskwrightError, LimitError } from '../errors.js';

export interface ReadRequest {
  /** Byte offset in the image. */
  readonly offset: bigint;
  /** Bytes wanted; the answer is shorter when the image ends first. */
  readonly length: number;
}

export type TableReader<T> = Generator<ReadRequest, T, Uint8Array>;

/** Largest single read a table reader may ask for (GPT entry arrays are the big ones). */
export const MAX_READ_BYTES = 4 * 1024 * 1024;

function checkRequest(request: ReadRequest): void {
  if (request.offset < 0n || request.offset > BigInt(Number.MAX_SAFE_INTEGER) || !Number.isSafeInteger(request.length) || request.length < 0 || request.length > MAX_READ_BYTES) {
    throw new LimitError(`refusing to read ${request.length} bytes at offset ${request.offset}`, { offset: request.offset, expected: MAX_READ_BYTES, actual: request.length });
  }
}

/** Runs a reader over an in-memory image. */
export function runOnBytes<T>(reader: TableReader<T>, image: Uint8Array): T {
  let step = reader.next();
  while (!step.done) {
    checkRequest(step.value);
    const size = BigInt(image.length);
    const start = step.value.offset > size ? size : step.value.offset;
    const end = start + BigInt(step.value.length) > size ? size : start + BigInt(step.value.length);
    step = reader.next(image.slice(Number(start), Number(end)));
  }
  return step.value;
}

/** Runs a reader over an open file with positional reads. */
export async function runOnFile<T>(reader: TableReader<T>, handle: FileHandle, path: string): Promise<T> {
  let step = reader.next();
  while (!step.done) {
    checkRequest(step.value);
    const buffer = new Uint8Array(step.value.length);
    let filled = 0;
    try {
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, Number(step.value.offset) + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
    } catch (error) {
      throw new DiskwrightError('E_IO', `cannot read ${path}: ${(error as Error).message}`, { path, cause: error });
    }
    step = reader.next(buffer.subarray(0, filled));
  }
  return step.value;
}

/** Runs a reader over a Disk (any format: raw, a partition window, qcow2's virtual disk). */
export function runOnDisk<T>(reader: TableReader<T>, disk: Disk): T {
  let step = reader.next();
  while (!step.done) {
    checkRequest(step.value);
    // Reads past the end come back short, as from a file.
    const start = Math.min(Number(step.value.offset), disk.size);
    const buffer = new Uint8Array(Math.max(0, Math.min(step.value.length, disk.size - start)));
    disk.read(buffer, start);
    step = reader.next(buffer);
  }
  return step.value;
}
