import { openImage, type DiskFormat, type Overlay } from '../disk/index.js';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { changeInPlace, runToolDirect, runToolOnOverlay } from './in-place.js';
import { imageSpec, type E2fsToolResult } from './run.js';
import { dumpFilesystemHeader } from './dump.js';
import { lastMessage } from './tune.js';
import { resize2fsProgressReader, type PassCallback } from './progress.js';

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
  /** False for a private temp image (see InPlaceOptions.durable); default true. */
  readonly durable?: boolean;
  /** The image's format (`--format`; qcow2 trusts its backing chain). Default: the probing rule. */
  readonly format?: DiskFormat;
  /**
   * A new private image (a thin instance's overlay): resize2fs writes the file directly, no
   * overlay and no commit; the caller renames the file into place when complete.
   */
  readonly direct?: boolean;
  /** resize2fs's passes as they run (resize2fs -p). */
  readonly onPass?: PassCallback;
}

export interface GrowResult {
  readonly blockSize: number;
  readonly oldBlocksCount: bigint;
  readonly blocksCount: bigint;
  readonly output: string;
}

/**
 * Grows (or with allowShrink, shrinks) an ext2/3/4 filesystem with the WebAssembly resize2fs.
 * The container (image file or partition) must already be large enough. resize2fs runs on a
 * copy-on-write overlay and the result is committed crash-safely: after a kill the filesystem is
 * the old one or the new one, never half-resized.
 */
export async function growFilesystem(image: string, options: GrowFilesystemOptions = {}): Promise<GrowResult> {
  if (options.direct) {
    const disk = openImage(image, { readOnly: true, ...(options.format ? { format: options.format } : {}) });
    const size = disk.size;
    disk.close();
    return growWith((argv, run) => runToolDirect('resize2fs', argv, image, { ...run, ...(options.format ? { format: options.format } : {}) }), size, image, options);
  }
  const { value } = await changeInPlace(image, { ...(options.signal ? { signal: options.signal } : {}), ...(options.durable === false ? { durable: false } : {}), ...(options.format ? { format: options.format } : {}) }, async (overlay) => ({
    value: await growOnOverlay(overlay, image, options),
    commit: true,
  }));
  return value;
}

/**
 * resize2fs on `overlay` (the image at `image` as the tool names it, possibly grown already by
 * the caller); its changes stay in the overlay for the caller to commit. Rejects when resize2fs
 * fails (the overlay then holds only what the caller staged).
 */
export async function growOnOverlay(overlay: Overlay, image: string, options: GrowFilesystemOptions = {}): Promise<GrowResult> {
  return growWith((argv, run) => runToolOnOverlay('resize2fs', argv, overlay, { ...run, servedPath: image }), overlay.size, image, options);
}

type ResizeRun = (argv: string[], run: { env?: Record<string, string>; signal?: AbortSignal; onOutput?: (stream: 'stdout' | 'stderr', text: string) => void }) => Promise<E2fsToolResult>;

/** resize2fs through `runResize` on a container of `containerSize` bytes (the grown image). */
async function growWith(runResize: ResizeRun, containerSize: number, image: string, options: GrowFilesystemOptions): Promise<GrowResult> {
  const before = await dumpFilesystemHeader(image, { ...(options.offset !== undefined ? { offset: options.offset } : {}), ...(options.signal ? { signal: options.signal } : {}), ...(options.format ? { format: options.format } : {}) });
  const blockSize = Number(before['Block size']);
  const oldBlocksCount = BigInt(before['Block count'] ?? '0');
  let size = options.size;
  if (size === undefined && options.offset !== undefined && BigInt(options.offset) !== 0n) {
    // resize2fs sizes the whole file, not the part after ?offset=; say the size explicitly.
    size = containerSize - Number(options.offset);
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
  const argv = [...(options.force ? ['-f'] : []), ...(options.onPass ? ['-p'] : []), imageSpec(image, options.offset), ...sizeArg];
  const readPasses = options.onPass ? resize2fsProgressReader(options.onPass) : undefined;
  const result = await runResize(argv, {
    ...(readPasses ? { onOutput: (stream: 'stdout' | 'stderr', text: string) => (stream === 'stdout' ? readPasses(text) : undefined) } : {}),
    ...(options.fakeTime !== undefined ? { env: { E2FSPROGS_FAKE_TIME: String(options.fakeTime) } } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const output = result.stdout + result.stderr;
  if (result.exitCode !== 0) {
    const needsCheck = /Please run 'e2fsck -f/.test(output);
    // diskwright's step in the words, resize2fs's own diagnostic kept (it says why).
    throw new DiskwrightError('E_EXTFS', `resizing the filesystem in ${image} failed: ${resizeFailure(output, imageSpec(image, options.offset), image)}`, {
      path: image,
      actual: result.exitCode,
      // resize2fs asks for e2fsck after any failure; its half-done work was never committed here.
      hint: needsCheck
        ? 'the image was not changed (the aborted resize was discarded); if the cause is damage, `diskwright fsck --fix IMAGE` repairs it first'
        : 'the filesystem was not changed; the reason above is the resizer\'s own',
    });
  }
  const match = /(?:is now|already) (\d+) \((\d+)k\) blocks long/.exec(output);
  const blocksCount = match ? BigInt(match[1]!) : oldBlocksCount;
  return { blockSize, oldBlocksCount, blocksCount, output };
}

/** resize2fs's lines that only frame a failure: its banner, the progress line, the e2fsck advice. */
const RESIZE_CONTEXT = [/^resize2fs \d+\.\d+/, /^Resizing the filesystem on /, /^Please run 'e2fsck /, /^after the aborted resize operation\.?$/];

/**
 * Why resize2fs failed, on one line: its com_err line (`resize2fs: Illegal doubly indirect block
 * found while trying to resize IMAGE`) without the prefix, else its other lines joined (`The
 * containing partition … is only N blocks. You requested …`); the tool's image spec (with
 * `?offset=`) named as the user's image.
 */
export function resizeFailure(output: string, spec: string, image: string): string {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !RESIZE_CONTEXT.some((context) => context.test(line)));
  const error = lines.find((line) => line.startsWith('resize2fs: '));
  const text = error ? error.slice('resize2fs: '.length) : lines.length > 0 ? lines.join(' ') : lastMessage(output);
  return text.replaceAll(spec, image);
}
