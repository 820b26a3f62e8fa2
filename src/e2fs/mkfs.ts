import { open, stat } from 'node:fs/promises';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { withAtomicPath } from '../io/atomic.js';
import { recordFormat } from '../disk/format-record.js';
import { runE2fsTool } from './run.js';
import type { HookFactory } from './pool.js';
import { dumpFilesystemHeader } from './dump.js';
import { lastMessage } from './tune.js';

export type FilesystemType = 'ext2' | 'ext3' | 'ext4';
const TYPES: readonly FilesystemType[] = ['ext2', 'ext3', 'ext4'];
/** ext2/3/4 volume labels hold at most 16 bytes. */
const MAX_LABEL_BYTES = 16;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface MakeFilesystemOptions {
  readonly type: FilesystemType;
  /** Filesystem size in bytes (a multiple of 1024). */
  readonly size: number;
  /** Populate from this host directory (mke2fs -d): a filesystem built without root. */
  readonly fromDirectory?: string;
  readonly label?: string;
  /** A UUID, or 'random' / 'time' / 'clear' as mke2fs -U accepts. */
  readonly uuid?: string;
  /** Directory hash seed (a UUID) for reproducible images. */
  readonly hashSeed?: string;
  /** Fixed creation time (seconds since 1970) for reproducible images. */
  readonly fakeTime?: number;
  /**
   * Create the filesystem at this byte offset inside an existing image (a partition), in place.
   * Without it the image file is (re)created atomically, sparse.
   */
  readonly offset?: number | bigint;
  /** Replace an existing image file (or, with offset, an existing filesystem there). */
  readonly force?: boolean;
  /** Extra mke2fs -E options, e.g. ['lazy_itable_init=0']. */
  readonly extendedOptions?: readonly string[];
  readonly signal?: AbortSignal;
  /**
   * Serve `fromDirectory` (then a virtual root) from a Tree (src/e2fs/tree.ts) built by this
   * factory inside the worker: a tar archive or a directory with owners mapped.
   */
  readonly treeFactory?: HookFactory;
}

export interface MakeFilesystemResult {
  readonly output: string;
}

/** Validates options and returns mke2fs's argv (without the device and size). */
export function mke2fsArgs(options: MakeFilesystemOptions): string[] {
  if (!TYPES.includes(options.type)) {
    throw new InvalidArgumentError(`Expected \`type\` to be ext2, ext3 or ext4, got \`${String(options.type)}\``);
  }
  if (!Number.isSafeInteger(options.size) || options.size <= 0 || options.size % 1024 !== 0) {
    throw new InvalidArgumentError(`Expected \`size\` to be a positive multiple of 1024 bytes, got \`${options.size}\``);
  }
  const argv = ['-F', '-t', options.type];
  if (options.label !== undefined) {
    if (Buffer.byteLength(options.label) > MAX_LABEL_BYTES || options.label.includes('\0')) {
      throw new InvalidArgumentError(`Expected \`label\` to be at most ${MAX_LABEL_BYTES} bytes, got \`${options.label}\``);
    }
    argv.push('-L', options.label);
  }
  if (options.uuid !== undefined) {
    if (!UUID_RE.test(options.uuid) && !['random', 'time', 'clear'].includes(options.uuid)) {
      throw new InvalidArgumentError(`Expected \`uuid\` to be a UUID like 0b1c…-…, random, time or clear, got \`${options.uuid}\``);
    }
    argv.push('-U', options.uuid);
  }
  const extended: string[] = [];
  if (options.hashSeed !== undefined) {
    if (!UUID_RE.test(options.hashSeed)) throw new InvalidArgumentError(`Expected \`hashSeed\` to be a UUID, got \`${options.hashSeed}\``);
    extended.push(`hash_seed=${options.hashSeed}`);
  }
  if (options.offset !== undefined && BigInt(options.offset) !== 0n) {
    if (BigInt(options.offset) < 0n) throw new InvalidArgumentError(`Expected \`offset\` to be non-negative, got \`${options.offset}\``);
    extended.push(`offset=${BigInt(options.offset)}`);
  }
  for (const option of options.extendedOptions ?? []) {
    if (!/^[a-z_]+(=[A-Za-z0-9_.:/-]+)?$/.test(option)) throw new InvalidArgumentError(`Expected an extended filesystem option like lazy_itable_init=0, got \`${option}\``);
    extended.push(option);
  }
  if (extended.length > 0) argv.push('-E', extended.join(','));
  if (options.fromDirectory !== undefined) argv.push('-d', options.fromDirectory);
  return argv;
}

/**
 * Makes an ext2/3/4 filesystem with the WebAssembly mke2fs — from a host directory too, without
 * root. A new image file is written atomically and stays sparse (zero ranges are never written).
 */
export async function makeFilesystem(image: string, options: MakeFilesystemOptions): Promise<MakeFilesystemResult> {
  const argv = mke2fsArgs(options);
  if (options.fromDirectory !== undefined && options.treeFactory === undefined) {
    const info = await stat(options.fromDirectory).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new DiskwrightError('E_NOT_FOUND', `source directory ${options.fromDirectory} does not exist or is not a directory`, {
        path: options.fromDirectory,
        hint: 'pass an existing directory to --from',
      });
    }
  }
  const sizeArg = `${options.size / 1024}k`;
  const run = async (device: string): Promise<MakeFilesystemResult> => {
    const result = await runE2fsTool('mke2fs', [...argv, device, sizeArg], {
      ...(options.fakeTime !== undefined ? { env: { E2FSPROGS_FAKE_TIME: String(options.fakeTime) } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.treeFactory ? { treeFactory: options.treeFactory } : {}),
    });
    const output = result.stdout + result.stderr;
    if (result.exitCode !== 0) {
      throw new DiskwrightError('E_EXTFS', `making the filesystem for ${image} failed: ${lastMessage(output)}`, {
        path: image,
        actual: result.exitCode,
        hint: 'check the size, label and source directory',
      });
    }
    return { output };
  };

  if (options.offset !== undefined && BigInt(options.offset) !== 0n) {
    const info = await stat(image).catch(() => undefined);
    if (!info?.isFile()) throw new DiskwrightError('E_NOT_FOUND', `image ${image} does not exist`, { path: image, hint: 'create the disk image and its partition table first' });
    const end = BigInt(options.offset) + BigInt(options.size);
    if (BigInt(info.size) < end) {
      throw new DiskwrightError('E_OUT_OF_RANGE', `a ${options.size}-byte filesystem at offset ${options.offset} ends past the end of ${image} (${info.size} bytes)`, { path: image, hint: 'make the filesystem smaller or grow the image first' });
    }
    if (!options.force) {
      const existing = await dumpFilesystemHeader(image, { offset: options.offset }).then(() => true, () => false);
      if (existing) throw new DiskwrightError('E_EXISTS', `${image} already holds a filesystem at offset ${options.offset}`, { path: image, hint: 'pass --force to replace it' });
    }
    return run(image);
  }
  return withAtomicPath(
    image,
    async (temp) => {
      // A sparse file of the final size: mke2fs only writes metadata into it.
      const handle = await open(temp, 'wx', 0o644);
      try {
        await handle.truncate(options.size);
      } finally {
        await handle.close();
      }
      const result = await run(temp);
      // diskwright made this image raw: a qcow2 header its guest writes is never believed (docs/qcow2.md).
      recordFormat(temp, 'raw');
      return result;
    },
    { overwrite: options.force === true, ...(options.signal ? { signal: options.signal } : {}) },
  );
}
