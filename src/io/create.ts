import { InvalidArgumentError } from '../errors.js';
import { withAtomicOutput } from './atomic.js';

/** Options of {@link createImage}. */
export interface CreateImageOptions {
  /** Replace an existing file. */
  readonly force?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Creates a sparse raw image of `sizeBytes` (all holes: instant, no disk space used) atomically.
 * Replaces `dd if=/dev/zero of=IMAGE bs=1M count=N`.
 */
export async function createImage(path: string, sizeBytes: number, options: CreateImageOptions = {}): Promise<void> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    throw new InvalidArgumentError(`Expected \`size\` to be a positive whole number of bytes, got \`${sizeBytes}\``);
  }
  await withAtomicOutput(path, (handle) => handle.truncate(sizeBytes), { overwrite: options.force === true, signal: options.signal });
}
