import { closeSync, openSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import * as e2fs from '../e2fs/index.js';
import { DiskwrightError, InvalidArgumentError, throwIfAborted } from '../errors.js';
import * as partition from '../partition/index.js';
import type { PartitionTable, Partition } from '../partition/types.js';
import { commitRuns, recoverInterruptedCommit, type CommitSummary } from './commit.js';
import { mapExtError } from './errors-map.js';
import { freeBlockTest } from './free-blocks.js';
import { setInodeTimes } from './inode-times.js';
import { exclusive, ext2fsModule, isWasmAbort, resetExt2fsModule } from './module.js';
import { OverlayDisk } from './overlay.js';
import { Ext2fsSession } from './session.js';
import { assertExtSupported, readExtGeometry } from './superblock.js';
import type { FilesystemSession, OpenFilesystemOptions } from './types.js';

/** Engineer A's partition API (contracts.md), looked up at run time so this area builds without it. */
interface PartitionApi {
  readPartitionTable(imagePath: string): Promise<PartitionTable>;
  getPartition(table: PartitionTable, number: number): Partition;
  partitionByteRange(table: PartitionTable, partition: Partition): { offset: bigint; length: bigint };
}

/** Engineer C's fsck runner (contracts.md), used only to replay a journal on request. */
type CheckFilesystem = (image: string, options: { offset?: number; mode: 'check' | 'preen' | 'fix'; force?: boolean; signal?: AbortSignal }) => Promise<{ exitCode: number; status: string; output: string }>;

/** Byte range of the filesystem inside the image file. */
export interface FilesystemLocation {
  readonly offset: number;
  readonly length: number;
}

/** Resolves `partition`/`offset` options to the filesystem's byte range inside `image`. */
export async function locateFilesystem(image: string, options: Pick<OpenFilesystemOptions, 'partition' | 'offset'>): Promise<FilesystemLocation> {
  const info = await stat(image).catch((error: unknown) => {
    throw new DiskwrightError('E_NOT_FOUND', `image ${image} not found`, { path: image, cause: error });
  });
  if (!info.isFile()) throw new InvalidArgumentError(`${image} is not a regular file`, { path: image });
  if (options.partition !== undefined && options.offset !== undefined) {
    throw new InvalidArgumentError('Pass either `partition` or `offset`, not both');
  }
  if (options.partition !== undefined) {
    if (!Number.isInteger(options.partition) || options.partition < 1) {
      throw new InvalidArgumentError(`Expected \`partition\` to be a partition number ≥ 1, got \`${options.partition}\``);
    }
    const api = partition as unknown as Partial<PartitionApi>;
    if (typeof api.readPartitionTable !== 'function' || typeof api.getPartition !== 'function' || typeof api.partitionByteRange !== 'function') {
      throw new DiskwrightError('E_UNSUPPORTED_FEATURE', 'partition tables are not supported in this build', { hint: 'pass offset (--offset BYTES) instead' });
    }
    const table = await api.readPartitionTable(image);
    const range = api.partitionByteRange(table, api.getPartition(table, options.partition));
    const end = range.offset + range.length;
    if (end > BigInt(info.size)) {
      throw new DiskwrightError('E_TRUNCATED', `partition ${options.partition} ends at byte ${end}, past the end of ${image} (${info.size} bytes)`, { path: image });
    }
    return { offset: Number(range.offset), length: Number(range.length) };
  }
  const offset = options.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= info.size) {
    throw new InvalidArgumentError(`Expected \`offset\` to be a byte offset inside ${image} (0..${info.size - 1}), got \`${offset}\``);
  }
  return { offset, length: info.size - offset };
}

async function replayJournal(image: string, offset: number, signal?: AbortSignal): Promise<void> {
  const check = (e2fs as unknown as { checkFilesystem?: CheckFilesystem }).checkFilesystem;
  if (typeof check !== 'function') {
    throw new DiskwrightError('E_NEEDS_RECOVERY', `${image}: replaying the journal needs the WASM e2fsprogs runner, which this build lacks`, {
      path: image,
      hint: `run \`diskwright fsck --fix ${image}\` (or host e2fsck -p) first`,
    });
  }
  const result = await check(image, { offset, mode: 'preen', ...(signal ? { signal } : {}) });
  if (result.status !== 'clean' && result.status !== 'fixed') {
    throw new DiskwrightError('E_NEEDS_RECOVERY', `${image}: journal replay failed (e2fsck exit ${result.exitCode})`, {
      path: image,
      hint: `run \`diskwright fsck --fix ${image}\``,
    });
  }
}

/** What the last write session on this process committed (for benches and progress reports). */
export let lastCommit: CommitSummary | undefined;

/**
 * Opens the ext2/3/4 filesystem in `image` (or in partition `options.partition` / at
 * `options.offset`), runs `fn` with a {@link FilesystemSession} and always closes it.
 *
 * With `write: true` every change is staged in memory and committed to the image only when `fn`
 * resolves (crash-safe, see commit.ts); when `fn` throws or the signal fires, the image is left
 * byte-identical. Refuses `E_NEEDS_RECOVERY` (journal needs replay; pass `replayJournal`) and
 * `E_UNSUPPORTED_FEATURE`. One session per image at a time in a process; a nested or concurrent
 * second session on the same image fails with `E_INVALID_ARGUMENT`.
 */
export async function withFilesystem<T>(image: string, options: OpenFilesystemOptions, fn: (fs: FilesystemSession) => Promise<T>): Promise<T> {
  const write = options.write === true;
  const location = await locateFilesystem(image, options);
  return exclusive(await realpath(image), async () => {
    throwIfAborted(options.signal);
    await recoverInterruptedCommit(image);
    let geometry = await readExtGeometry(image, location.offset);
    assertExtSupported(geometry, image, { write, replayJournal: options.replayJournal === true });
    if (write && geometry.needsRecovery) {
      await replayJournal(image, location.offset, options.signal);
      geometry = await readExtGeometry(image, location.offset);
      assertExtSupported(geometry, image, { write });
    }
    const fsBytes = Number(geometry.blocksCount) * geometry.blockSize;
    if (fsBytes > location.length) {
      throw new DiskwrightError('E_TRUNCATED', `${image}: the filesystem needs ${fsBytes} bytes but its container holds ${location.length}`, {
        path: image,
        hint: 'the image or partition is truncated; check --partition/--offset',
      });
    }
    const fd = openSync(image, 'r');
    const disk = new OverlayDisk(fd, location.offset, location.length);
    try {
      const module = ext2fsModule();
      let mounted;
      try {
        mounted = await module.mount(disk, 0);
      } catch (error) {
        if (isWasmAbort(error)) resetExt2fsModule();
        throw mapExtError(error, 'open filesystem in', image);
      }
      const session = new Ext2fsSession(mounted.promises, write, options.signal);
      let result: T;
      try {
        result = await fn(session);
      } finally {
        session.close();
        try {
          await module.umount(mounted);
        } catch (error) {
          if (isWasmAbort(error) || session.failure) resetExt2fsModule();
          // eslint-disable-next-line no-unsafe-finally -- a failed close must not be committed
          if (!session.failure) throw mapExtError(error, 'close filesystem in', image);
        }
        if (session.failure) resetExt2fsModule();
      }
      if (write && disk.size + session.pendingTimes.size > 0) {
        for (const [ino, times] of session.pendingTimes) setInodeTimes(geometry, disk, ino, times.atime, times.mtime);
        throwIfAborted(options.signal);
        const wasFree = freeBlockTest(fd, location.offset, geometry);
        lastCommit = await commitRuns(image, () => disk.runs(), { ...(options.signal ? { signal: options.signal } : {}), base: location.offset, wasFree });
      }
      return result;
    } finally {
      disk.clear();
      closeSync(fd);
    }
  });
}
