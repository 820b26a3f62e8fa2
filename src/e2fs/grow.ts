import { stat } from 'node:fs/promises';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { imageSpec, runE2fsTool } from './run.js';
import { dumpFilesystemHeader } from './dump.js';
import { lastMessage } from './tune.js';

export interface GrowFilesystemOptions {
  /** Byte offset of the filesystem inside the image (a partition). */
  readonly offset?: number | bigint;
  /**
   * New filesystem size in bytes (rounded down to whole blocks). Default: fill the container —
   * the image file, or with `offset`, the rest of the file after `offset`.
   */
  readonly size?: number;
  /** Allow a smaller size (resize2fs then shrinks if the filesystem's minimum allows it). */
  readonly allowShrink?: boolean;
  /** resize2fs -f: skip its "run e2fsck -f first" safety checks. */
  readonly force?: boolean;
  readonly fakeTime?: number;
  readonly signal?: AbortSignal;
}

export interface GrowResult {
  readonly blockSize: number;
  readonly oldBlocksCount: bigint;
  readonly blocksCount: bigint;
  readonly output: string;
}

/**
 * Grows (or with allowShrink, shrinks) an ext2/3/4 filesystem with the WebAssembly resize2fs.
 * The container (image file or partition) must already be large enough.
 */
export async function growFilesystem(image: string, options: GrowFilesystemOptions = {}): Promise<GrowResult> {
  const before = await dumpFilesystemHeader(image, { ...(options.offset !== undefined ? { offset: options.offset } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  const blockSize = Number(before['Block size']);
  const oldBlocksCount = BigInt(before['Block count'] ?? '0');
  let size = options.size;
  if (size === undefined && options.offset !== undefined && BigInt(options.offset) !== 0n) {
    // resize2fs sizes the whole file, not the part after ?offset=; say the size explicitly.
    size = (await stat(image)).size - Number(options.offset);
  }
  let sizeArg: string[] = [];
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new InvalidArgumentError(`Expected \`size\` to be a positive number of bytes, got \`${size}\``);
    }
    const newBlocks = BigInt(Math.floor(size / blockSize));
    if (newBlocks < oldBlocksCount && !options.allowShrink) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `refusing to shrink the filesystem in ${image} from ${oldBlocksCount} to ${newBlocks} blocks of ${blockSize} bytes`, {
        path: image,
        expected: `>= ${oldBlocksCount * BigInt(blockSize)} bytes`,
        actual: size,
        hint: 'give a size at least as large as the filesystem (diskwright info shows it)',
      });
    }
    sizeArg = [`${Math.floor(size / 512)}s`];
  }
  const argv = [...(options.force ? ['-f'] : []), imageSpec(image, options.offset), ...sizeArg];
  const result = await runE2fsTool('resize2fs', argv, {
    ...(options.fakeTime !== undefined ? { env: { E2FSPROGS_FAKE_TIME: String(options.fakeTime) } } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const output = result.stdout + result.stderr;
  if (result.exitCode !== 0) {
    const needsCheck = /Please run 'e2fsck -f/.test(output);
    throw new DiskwrightError('E_EXTFS', `resize2fs failed on ${image}: ${lastMessage(output)}`, {
      path: image,
      actual: result.exitCode,
      hint: needsCheck ? 'run `diskwright fsck --fix IMAGE` first (the filesystem is not known clean)' : 'see the resize2fs message above; the filesystem was not changed if it refused to start',
    });
  }
  const match = /(?:is now|already) (\d+) \((\d+)k\) blocks long/.exec(output);
  const blocksCount = match ? BigInt(match[1]!) : oldBlocksCount;
  return { blockSize, oldBlocksCount, blocksCount, output };
}
