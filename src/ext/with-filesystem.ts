import { stat } from 'node:fs/promises';
import * as e2fs from '../e2fs/index.js';
import { isOpenRefusal, startOpenCheck, type PendingOpenCheck } from '../e2fs/open-check.js';
import { AbortedError, DiskwrightError, InvalidArgumentError, isDiskwrightError, reportAbort, throwIfAborted, TruncatedError } from '../errors.js';
import * as partition from '../partition/index.js';
import { bulkAvailable, debugfsQuote, ownershipCommands, runDebugfsBatch, sizeCommands, type BulkPutPlan } from './bulk.js';
import { allocationPlan, choosePunches, copyIntoExtents, openPutSource, restrictToRanges } from './put-data.js';
import { commitOverlay, commitOverlayInterruptibly, FreeBlockWriter, openImage, Overlay, PartitionWindow, prepareRecord, settleCompletedCommit, withImage, type Disk, type DiskFormat, type PreparedRecord } from '../disk/index.js';
import { testFaultPoint } from '../io/test-fault.js';
import { Ext2fsDiskAdapter } from './disk-adapter.js';
import { mapExtError } from './errors-map.js';
import { freeBlockTest } from './free-blocks.js';
import { readInodeTimes, setInodeTimes, type FileExtent, type StoredInodeTimes } from './inode-times.js';
import { exclusive, ext2fsModule, isWasmAbort, resetExt2fsModule, type Ext2fsMounted, type Ext2fsPromises } from './module.js';
import { QueuedSession } from './queued.js';
import { Ext2fsSession } from './session.js';
import { INCOMPAT, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE } from '../extmeta/index.js';
import { assertExtSupported, parseExtSuperblock, type ExtGeometry } from './superblock.js';
import type { FilesystemSession, OpenFilesystemOptions } from './types.js';

/** Engineer C's fsck runner (contracts.md), used only to replay a journal on request. */
type CheckFilesystem = (image: string, options: { offset?: number; mode: 'check' | 'preen' | 'fix'; force?: boolean; signal?: AbortSignal; format?: DiskFormat }) => Promise<{ exitCode: number; status: string; output: string }>;

/** Byte range of the filesystem inside the image (its guest-visible bytes: a qcow2's virtual disk). */
export interface FilesystemLocation {
  readonly offset: number;
  readonly length: number;
}

/**
 * Resolves `partition`/`offset` options to the filesystem's byte range inside `image`, read
 * through the block layer (raw or qcow2, `options.format` forcing it).
 */
export async function locateFilesystem(image: string, options: Pick<OpenFilesystemOptions, 'partition' | 'offset' | 'format'>): Promise<FilesystemLocation> {
  const info = await stat(image).catch((error: unknown) => {
    throw new DiskwrightError('E_NOT_FOUND', `image ${image} not found`, { path: image, cause: error });
  });
  if (!info.isFile()) throw new InvalidArgumentError(`${image} is not a regular file`, { path: image });
  const disk = openImage(image, { readOnly: true, ...(options.format ? { format: options.format } : {}) });
  try {
    return locateOnDisk(disk, image, options);
  } finally {
    disk.close();
  }
}

/** {@link locateFilesystem} on an open Disk. */
function locateOnDisk(disk: Disk, image: string, options: Pick<OpenFilesystemOptions, 'partition' | 'offset'>): FilesystemLocation {
  if (options.partition !== undefined && options.offset !== undefined) {
    throw new InvalidArgumentError('Pass either `partition` or `offset`, not both');
  }
  if (options.partition !== undefined) {
    if (!Number.isInteger(options.partition) || options.partition < 1) {
      throw new InvalidArgumentError(`Expected \`partition\` to be a partition number ≥ 1, got \`${options.partition}\``);
    }
    const table = partition.readDiskPartitionTable(disk);
    const range = partition.partitionByteRange(table, partition.getPartition(table, options.partition));
    const end = range.offset + range.length;
    if (end > BigInt(disk.size)) {
      throw new DiskwrightError('E_TRUNCATED', `partition ${options.partition} ends at byte ${end}, past the end of ${image} (${disk.size} bytes)`, { path: image });
    }
    return { offset: Number(range.offset), length: Number(range.length) };
  }
  const offset = options.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= disk.size) {
    throw new InvalidArgumentError(`Expected \`offset\` to be a byte offset inside ${image} (0..${disk.size - 1}), got \`${offset}\``);
  }
  return { offset, length: disk.size - offset };
}

/** The superblock of the filesystem at `offset` of `disk`, as the fs layer needs it. */
function geometryOnDisk(disk: Disk, image: string, offset: number): ExtGeometry {
  const at = offset + SUPERBLOCK_OFFSET;
  if (at + SUPERBLOCK_SIZE > disk.size) {
    throw new TruncatedError(`ext superblock at byte ${at} lies beyond the end of ${image} (${disk.size} bytes)`, { offset: at, path: image, hint: 'the image is truncated or the offset is wrong' });
  }
  const bytes = new Uint8Array(SUPERBLOCK_SIZE);
  disk.read(bytes, at);
  return parseExtSuperblock(bytes);
}

/** Where the filesystem is and what it looks like, read once through a read-only Disk. */
function inspectFilesystem(image: string, options: OpenFilesystemOptions): { location: FilesystemLocation; geometry: ExtGeometry } {
  const disk = openImage(image, { readOnly: true, ...(options.format ? { format: options.format } : {}) });
  try {
    const location = locateOnDisk(disk, image, options);
    return { location, geometry: geometryOnDisk(disk, image, location.offset) };
  } finally {
    disk.close();
  }
}

async function replayJournal(image: string, offset: number, signal?: AbortSignal, format?: DiskFormat): Promise<void> {
  const check = (e2fs as unknown as { checkFilesystem?: CheckFilesystem }).checkFilesystem;
  if (typeof check !== 'function') {
    throw new DiskwrightError('E_NEEDS_RECOVERY', `${image}: replaying the journal needs the WASM e2fsprogs runner, which this build lacks`, {
      path: image,
      hint: `run \`diskwright fsck --fix ${image}\` (or host e2fsck -p) first`,
    });
  }
  const result = await check(image, { offset, mode: 'preen', ...(signal ? { signal } : {}), ...(format ? { format } : {}) });
  if (result.status !== 'clean' && result.status !== 'fixed') {
    throw new DiskwrightError('E_NEEDS_RECOVERY', `${image}: replaying the journal failed (filesystem check exit code ${result.exitCode})`, {
      path: image,
      hint: `run \`diskwright fsck --fix ${image}\``,
    });
  }
}

/** How the last write session of this process committed (benches and reports read it). */
export let lastCommit:
  | {
      readonly bytes: number;
      readonly undoBytes: number;
      readonly path: 'overlay';
      readonly directPuts: number;
      readonly bulk: boolean;
      /** File data written in place into blocks the committed filesystem did not use (part of `bytes`). */
      readonly inPlaceBytes: number;
      /** Whether the session opened the bundled libext2fs (false: queued operations only, queued.ts). */
      readonly mounted: boolean;
    }
  | undefined;

/** Most `dw_extent` lines one dw_alloc may print (a fragmented 1 TiB file; named limit). */
const MAX_ALLOCATED_EXTENTS = 1 << 24;

/**
 * The data blocks debugfs `dw_alloc` gave a file of `count` blocks, from its `dw_extent LOGICAL
 * PHYSICAL LENGTH` lines, in logical order. Throws E_EXTFS unless they cover blocks 0..count-1
 * exactly, once each, inside the filesystem's `blocksCount` blocks.
 */
export function allocatedExtents(output: string, dest: string, count: number, blocksCount: number): FileExtent[] {
  const extents: FileExtent[] = [];
  const bad = (why: string): DiskwrightError => new DiskwrightError('E_EXTFS', `the blocks allocated for ${dest} are wrong: ${why}`, { path: dest, hint: 'this is a diskwright bug; run with --debug' });
  for (const match of output.matchAll(/^dw_extent (\d+) (\d+) (\d+)$/gm)) {
    if (extents.length >= MAX_ALLOCATED_EXTENTS) throw bad(`more than ${MAX_ALLOCATED_EXTENTS} extents`);
    const [logical, physical, length] = [Number(match[1]), Number(match[2]), Number(match[3])];
    if (!(length > 0) || physical < 1 || physical + length > blocksCount) throw bad(`extent ${match[0].slice(10)} is outside the filesystem`);
    extents.push({ logical, physical, length });
  }
  extents.sort((a, b) => a.logical - b.logical);
  let next = 0;
  for (const e of extents) {
    if (e.logical !== next) throw bad(`no block ${next}`);
    next += e.length;
  }
  if (next !== count) throw bad(`${next} blocks, expected ${count}`);
  return extents;
}

/** Heap of a small debugfs/dumpe2fs run that holds the filesystem's bitmaps (heapFor). */
const SMALL_RUN_HEAP = 16 * 1024 * 1024;
/** Batches of at most this many debugfs commands run on a {@link heapFor} heap (a large put's few). */
const SMALL_BATCH_COMMANDS = 64;
/** Largest heap heapFor asks for (the runner's default for big runs). */
const LARGE_RUN_HEAP = 128 * 1024 * 1024;

/**
 * Initial WebAssembly heap for a run that opens this filesystem and touches a few files (the open
 * check, a queued batch): 16 MiB plus twice its block and inode bitmaps, at most 128 MiB. Setting
 * up and freeing a 128 MiB heap cost more than such a run (bench/fs-write.mjs); a heap that turns
 * out too small grows.
 */
export function heapFor(geometry: ExtGeometry): number {
  const bitmaps = Number(geometry.blocksCount) / 8 + geometry.inodesCount / 8;
  return Math.min(LARGE_RUN_HEAP, SMALL_RUN_HEAP + Math.ceil((2 * bitmaps) / 2 ** 20) * 2 ** 20);
}

/** Host I/O failures (permissions, disk full) as one-line errors naming the image. */
function hostIoError(error: unknown, what: string, image: string): DiskwrightError {
  if (error instanceof DiskwrightError) return error;
  const code = typeof error === 'object' && error !== null && 'code' in error ? ` (${String((error as { code: unknown }).code)})` : '';
  return new DiskwrightError('E_IO', `${what} for ${image} failed${code}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, {
    path: image,
    cause: error,
    hint: 'diskwright needs write access to the image and to its directory (for the commit record)',
  });
}

/** The mutable state of one open filesystem: which file it reads, its overlay and its mount. */
class OpenFilesystem {
  /** The image through the block layer (raw or qcow2; read-only for readers; the commit writes it). */
  private raw: Disk;
  /** Every write of the session lands here; the commit moves it to `raw`. */
  private overlay: Overlay;
  /** The filesystem's bytes as libext2fs sees them (a window of the overlay). */
  disk: Ext2fsDiskAdapter;
  private mounted: Ext2fsMounted | undefined;
  /** debugfs runs of this session (the bulk path). */
  private bulkSteps = 0;
  /** Files written by fallocate + direct block writes in this session. */
  private directPuts = 0;
  /** Whether libext2fs was mounted in this session. */
  private everMounted = false;
  /** Which filesystem blocks the committed image uses (its bitmaps; they change only by a commit). */
  private committedFree: ReturnType<typeof freeBlockTest> | undefined;
  /** Large files' data written in place into blocks the committed filesystem does not use. */
  private freeWriter: FreeBlockWriter | undefined;
  private committed = false;
  /** The record file of this session's commit, created in the background while the session runs. */
  private preparedRecord: PreparedRecord | undefined;

  constructor(
    private readonly image: string,
    private readonly location: FilesystemLocation,
    private readonly geometry: ExtGeometry,
    private readonly signal: AbortSignal | undefined,
    write: boolean,
    private readonly scratch = false,
    format?: DiskFormat,
  ) {
    // A scratch image is fsynced by its owner before it is published: no barriers of its own.
    this.raw = openImage(image, { readOnly: !write, ...(scratch ? { scratch } : {}), ...(format ? { format } : {}) });
    this.overlay = new Overlay(this.raw);
    this.disk = new Ext2fsDiskAdapter(new PartitionWindow(this.overlay, location.offset, location.length));
  }

  async mount(): Promise<Ext2fsPromises> {
    this.everMounted = true;
    try {
      this.mounted = await ext2fsModule().mount(this.disk, 0);
      return this.mounted.promises;
    } catch (error) {
      if (isWasmAbort(error)) resetExt2fsModule();
      throw mapExtError(error, 'open filesystem in', this.image, this.disk.ioError);
    }
  }

  /** Closes libext2fs (its last writes land in the overlay). */
  async unmount(session: Ext2fsSession): Promise<void> {
    const mounted = this.mounted;
    this.mounted = undefined;
    if (!mounted) return;
    try {
      await ext2fsModule().umount(mounted);
    } catch (error) {
      if (isWasmAbort(error) || session.failure) resetExt2fsModule();
      if (!session.failure) throw mapExtError(error, 'close filesystem in', this.image, this.disk.ioError);
    }
    if (session.failure) resetExt2fsModule();
  }

  /** An inode's times as stored in the overlay (epoch bits included). */
  storedTimes(ino: number): StoredInodeTimes {
    return readInodeTimes(this.geometry, this.disk, ino);
  }

  private flushTimes(session: Ext2fsSession): void {
    for (const [ino, times] of session.pendingTimes) setInodeTimes(this.geometry, this.disk, ino, times.atime, times.mtime);
    session.pendingTimes.clear();
  }

  /**
   * One bulk step: flush libext2fs into the overlay, run debugfs on the overlay (in a worker; its
   * changes come back into the overlay), let `after` work on the overlay (false: it declined and
   * changed nothing), remount. The image itself is not touched until the commit.
   */
  async bulk(session: Ext2fsSession, commands: string[], step: string, after?: (stderr: string) => boolean | Promise<boolean>, onWrite?: () => void): Promise<boolean> {
    let accepted = true;
    try {
      await this.unmount(session);
      this.flushTimes(session);
      this.bulkSteps += 1;
      // A large put is a handful of commands (dw_alloc): a small heap; a tree batch keeps the default.
      const heap = commands.length <= SMALL_BATCH_COMMANDS ? { initialMemory: heapFor(this.geometry) } : {};
      const stderr = await runDebugfsBatch(this.image, commands, { overlay: this.overlay, offset: this.location.offset, step, ...heap }, this.signal, onWrite);
      if (after) accepted = await after(stderr);
      session.rebind(await this.mount());
      return accepted;
    } catch (error) {
      // Ctrl-C: say which of diskwright's steps stopped (not the tool that happened to run it).
      const mapped = isDiskwrightError(error, 'E_ABORTED') && !error.message.startsWith(step) ? new AbortedError(`${step} was interrupted; nothing was written to ${this.image}`, { cause: error }) : hostIoError(error, step, this.image);
      session.failure ??= mapped;
      throw mapped;
    }
  }

  /**
   * A batch of queued operations (queued.ts), run while libext2fs is not mounted: debugfs on the
   * overlay; a failing batch throws and stages nothing.
   */
  async queuedBatch(commands: string[], step: string, gate: OpenGate | undefined): Promise<void> {
    if (this.mounted) throw new DiskwrightError('E_INVALID_ARGUMENT', 'a queued batch ran while the per-call session was open', { hint: 'this is a diskwright bug; run with --debug' });
    this.bulkSteps += 1;
    // The first batch sees the image as committed (nothing was staged before it): its debugfs
    // checks the open for the whole session.
    const openCheck = gate?.batchMayCheck && this.overlay.clean ? { openCheck: { onPassed: () => gate.passed() } } : {};
    await runDebugfsBatch(this.image, commands, { overlay: this.overlay, offset: this.location.offset, step, initialMemory: heapFor(this.geometry), changedBitmapsOnly: true, ...openCheck }, this.signal);
  }

  /**
   * putFile of a large file: debugfs `dw_alloc` (the project's own command, wasm/lib/debugfs-dw-alloc.c)
   * allocates the file's blocks without writing them — initialized extents, or a block map whose
   * indirect blocks it writes once each — and lists them; the data is then written straight to
   * those blocks in large sequential writes. inline_data filesystems use debugfs `write`.
   */
  async bulkPut(session: Ext2fsSession, plan: BulkPutPlan): Promise<void> {
    const dst = debugfsQuote(plan.dest)!;
    const step = `writing ${plan.dest}`;
    const finish = [...sizeCommands(dst, plan.size), ...ownershipCommands(dst, plan.mode, plan.uid, plan.gid)];
    const remove = plan.replace ? [`rm ${dst}`] : [];
    // e2fsprogs 1.47.0 `write` drops trailing zero bytes of a partial last block on inline_data
    // filesystems (host debugfs too): setting the size restores them (they read back as zeros).
    const plain = [...remove, `write ${debugfsQuote(plan.source)!} ${dst}`, ...finish];
    const bs = this.geometry.blockSize;
    const reportDone = (): void => plan.onProgress?.({ bytes: plan.size, total: plan.size });
    // inline_data: `write /dev/null` makes an inline inode, which has no blocks to allocate.
    if (this.geometry.featureIncompat & INCOMPAT.inline_data || plan.size === 0) {
      await this.bulk(session, plain, step);
      reportDone();
      return;
    }
    // Opened (and read ahead) before debugfs runs: the disk reads the source while it allocates.
    const source = openPutSource(plan.source, plan.size, bs);
    try {
      // The source's holes are never read. Extent files get them as holes (punched after
      // dw_alloc; past MAX_PUNCHES the smaller ones are zeroed instead); block-mapped files
      // (ext2/ext3) keep the blocks, made to read as zeros by punching the image — e2fsprogs
      // 1.47.0's punch of a block map drops the mapped blocks after the range too (host debugfs
      // does the same), so it is not used there.
      const { allocate, holes } = allocationPlan(source.dataBlocks);
      const { punch, zero } = this.geometry.featureIncompat & INCOMPAT.extent ? choosePunches(holes) : { punch: [], zero: holes };
      const punchCommands = punch.map((h) => `punch ${dst} ${h.start} ${h.start + h.count - 1}`);
      const commands = [...remove, `write /dev/null ${dst}`, ...(allocate > 0 ? [`dw_alloc ${dst} ${allocate}`] : []), ...punchCommands, ...finish];
      await this.bulk(session, commands, step, async (output) => {
        if (allocate === 0) return true;
        const allocated = allocatedExtents(output, plan.dest, allocate, Number(this.geometry.blocksCount));
        // Into blocks the committed filesystem does not use the data goes in place (no overlay copy,
        // no undo record: the commit's metadata makes it part of the file); elsewhere into the overlay.
        const writer = this.inPlaceWriter();
        const { offset } = this.location;
        for (const e of restrictToRanges(allocated, zero)) writer.zero(offset + e.physical * bs, e.length * bs);
        const data = restrictToRanges(allocated, source.dataBlocks);
        await copyIntoExtents(source, (buffer, position) => writer.write(buffer, offset + position), data, bs, this.signal, plan.onProgress);
        this.directPuts += 1;
        return true;
      });
    } finally {
      source.close();
    }
    reportDone();
  }

  /** True when image range `[position, +bytes)` lies in the filesystem and is free in the committed bitmaps. */
  private unusedByCommitted(position: number, bytes: number): boolean {
    const { offset, length } = this.location;
    if (position < offset || position + bytes > offset + length) return false;
    const raw = this.raw;
    this.committedFree ??= freeBlockTest(
      (buffer, at) => {
        if (at + buffer.length > raw.size) return false;
        raw.read(buffer, at);
        return true;
      },
      offset,
      this.geometry,
    );
    return this.committedFree(position - offset, bytes);
  }

  private inPlaceWriter(): FreeBlockWriter {
    // Only a raw file takes bytes outside the commit: a qcow2 write also changes the image's own
    // metadata (L2 tables, refcounts), which only the commit makes crash-safe.
    const raw = this.raw.format === 'raw';
    if (!this.freeWriter) {
      // The previous commit's record removal may not be durable yet; these writes can reach blocks it changed.
      if (raw) settleCompletedCommit(this.image);
      this.freeWriter = new FreeBlockWriter(this.overlay, (position, bytes) => raw && this.unusedByCommitted(position, bytes));
    }
    return this.freeWriter;
  }

  /** Makes the session's changes durable in the image (all or nothing). */
  async commit(session: Ext2fsSession | undefined): Promise<void> {
    if (session) this.flushTimes(session);
    throwIfAborted(this.signal);
    if (this.overlay.clean) {
      this.committed = true;
      return;
    }
    const inPlace = this.freeWriter?.bytesInPlace ?? 0;
    try {
      const prepared = this.preparedRecord ? await this.preparedRecord.ready : undefined;
      if (prepared) testFaultPoint('record-prepared');
      const summary = this.scratch
        ? commitOverlay(this.overlay, { durable: false })
        : await commitOverlayInterruptibly(this.overlay, {
            ...(this.signal ? { signal: this.signal } : {}),
            ...(prepared ? { prepared } : {}),
            needsNoSave: (position, bytes) => this.unusedByCommitted(position, bytes),
            // File data written in place is not in the overlay: the record cannot prove completion.
            outsideWrites: inPlace > 0,
          });
      this.committed = true;
      this.freeWriter?.keep();
      lastCommit = { bytes: summary.bytes + inPlace, undoBytes: summary.undoBytes, path: 'overlay', directPuts: this.directPuts, bulk: this.bulkSteps > 0, inPlaceBytes: inPlace, mounted: this.everMounted };
    } catch (error) {
      reportAbort(this.signal);
      // The commit rolled the metadata back; the data written in place goes too.
      this.freeWriter?.undo();
      throw error;
    }
  }

  /**
   * Starts creating the commit's record file now (raw images; a scratch session has none), so its
   * journal commit overlaps the session instead of delaying the commit (src/disk/commit.ts).
   */
  prepareCommit(): void {
    if (this.scratch || this.raw.format !== 'raw' || this.preparedRecord) return;
    this.preparedRecord = prepareRecord(this.image);
  }

  async dispose(): Promise<void> {
    try {
      // Not committed after Ctrl-C: answered before the clean-up below (punches, the spill file).
      if (!this.committed) reportAbort(this.signal);
      await this.preparedRecord?.release();
      // Not committed (the callback threw, Ctrl-C, a refusal): the image's bytes are the old ones again.
      if (!this.committed) this.freeWriter?.undo();
    } finally {
      this.overlay.close();
      this.raw.close();
    }
  }
}

/**
 * e2fsprogs 1.47's open check of one write session (open-check.ts), made once: by the session's
 * first queued debugfs batch (`dw_open_check` as its first command), else by a separate debugfs
 * run on the image, started as soon as the session needs it and awaited before the commit.
 */
class OpenGate {
  private pending: PendingOpenCheck | undefined;
  private ok = false;

  constructor(private readonly start: () => PendingOpenCheck) {}

  /** True while nothing has checked the open or started to: a batch may do it. */
  get batchMayCheck(): boolean {
    return !this.ok && this.pending === undefined;
  }

  /** A batch's `dw_open_check` passed. */
  passed(): void {
    this.ok = true;
  }

  /** Starts the separate check unless one passed or is running. */
  ensure(): void {
    if (!this.ok) this.pending ??= this.start();
  }

  /** Resolves once the open check passed (starting it if nothing did); rejects with its refusal. */
  async done(): Promise<void> {
    if (this.ok) return;
    this.ensure();
    await this.pending!.done();
  }
}

/**
 * Opens the ext2/3/4 filesystem in `image` (or in partition `options.partition` / at
 * `options.offset`), runs `fn` with a {@link FilesystemSession} and always closes it.
 *
 * With `write: true` nothing reaches the image before `fn` resolves; when `fn` throws or the signal
 * fires, the image is left byte-identical. Changes are staged in an {@link Overlay} and committed
 * through the block layer's one commit mechanism (src/disk/commit.ts); large files and big trees
 * go through the WASM debugfs, which writes into the same overlay (bulk.ts): the commit writes
 * only the changed blocks, whatever the filesystem holds. Refuses `E_NEEDS_RECOVERY`
 * (journal needs replay; pass `replayJournal`) and `E_UNSUPPORTED_FEATURE`. One session per image
 * at a time in a process; a nested or concurrent second session on the same image fails with
 * `E_INVALID_ARGUMENT`.
 */
export async function withFilesystem<T>(image: string, options: OpenFilesystemOptions, fn: (fs: FilesystemSession) => Promise<T>): Promise<T> {
  const write = options.write === true;
  // The image lock and the interrupted-commit check (readers refuse, writers roll back) come
  // first.
  return withImage(image, { access: write ? 'write' : 'read', ...(options.signal ? { signal: options.signal } : {}) }, ({ path: real }) => exclusive(real, async () => {
    throwIfAborted(options.signal);
    const info = await stat(image).catch((error: unknown) => {
      throw new DiskwrightError('E_NOT_FOUND', `image ${image} not found`, { path: image, cause: error });
    });
    if (!info.isFile()) throw new InvalidArgumentError(`${image} is not a regular file`, { path: image });
    const format = options.format;
    let { location, geometry } = inspectFilesystem(real, options);
    assertExtSupported(geometry, image, { write, replayJournal: options.replayJournal === true });
    if (write && geometry.needsRecovery) {
      await replayJournal(image, location.offset, options.signal, format);
      ({ location, geometry } = inspectFilesystem(real, options));
      assertExtSupported(geometry, image, { write });
    }
    const fsBytes = Number(geometry.blocksCount) * geometry.blockSize;
    if (fsBytes > location.length) {
      throw new DiskwrightError('E_TRUNCATED', `${image}: the filesystem needs ${fsBytes} bytes but its container holds ${location.length}`, {
        path: image,
        hint: 'the image or partition is truncated; check --partition/--offset',
      });
    }
    // The bundled libext2fs is 1.44: a write must first pass e2fsprogs 1.47's open checks (in a
    // worker, overlapping the session; awaited before anything reaches the image).
    // A scratch image the caller fully checks before publishing needs no open check (types.ts).
    const checkOpen = write && !(options.scratch === true && options.checkedBeforePublish === true);
    const openCheck = checkOpen ? new OpenGate(() => startOpenCheck(real, { offset: location.offset, initialMemory: heapFor(geometry), ...(options.signal ? { signal: options.signal } : {}), ...(format ? { format } : {}) })) : undefined;
    const queueWrites = write && options.queueWrites === true && bulkAvailable();
    // Per-call sessions start the check now, beside the session's own work; a queued session's
    // first batch makes it (OpenGate).
    if (!queueWrites) openCheck?.ensure();
    const open = new OpenFilesystem(real, location, geometry, options.signal, write, write && options.scratch === true, format);
    if (write) open.prepareCommit();
    try {
      /** libext2fs mounted on the overlay, with the bulk hooks of a write session. */
      const perCall = async (): Promise<Ext2fsSession> => {
        // libext2fs 1.44 writes from here on: no batch will check the open any more.
        openCheck?.ensure();
        const mounted = await open.mount().catch(async (error: unknown) => {
          await openCheck?.done();
          throw error;
        });
        const session = new Ext2fsSession(mounted, write, options.signal);
        session.storedTimes = (ino) => open.storedTimes(ino);
        session.ioError = () => open.disk.ioError;
        // The bulk path writes into the session's overlay: a partition, a hard-linked image and a
        // bare filesystem alike.
        if (write && bulkAvailable()) {
          session.bulk = async (commands, onWrite, step) => {
            await open.bulk(session, commands, step ?? 'the bulk write', undefined, onWrite);
          };
          session.bulkPut = (plan) => open.bulkPut(session, plan);
          session.bulkFixSizes = (geometry.featureIncompat & INCOMPAT.inline_data) !== 0;
        }
        return session;
      };
      // With queueWrites, a write session opens libext2fs only when an operation needs it
      // (queued.ts): small puts and mkdirs run as one debugfs batch on the overlay.
      const queued = queueWrites
        ? new QueuedSession({
            open: perCall,
            run: (commands, step) => open.queuedBatch(commands, step, openCheck),
            fixSizes: (geometry.featureIncompat & INCOMPAT.inline_data) !== 0,
            ...(options.signal ? { signal: options.signal } : {}),
          })
        : undefined;
      const direct = queued ? undefined : await perCall();
      let result: T;
      let finished = false;
      try {
        result = await fn(queued ?? direct!);
        finished = true;
      } finally {
        try {
          await queued?.close(finished).catch(async (error: unknown) => {
            // A filesystem e2fsprogs 1.47 refuses is reported as that, whatever the batch said.
            if (!isOpenRefusal(error)) await openCheck?.done();
            throw error;
          });
        } finally {
          const session = queued ? queued.opened : direct;
          if (session) {
            await session.close();
            await open.unmount(session);
          }
        }
      }
      await openCheck?.done();
      if (write) options.onCommit?.();
      if (write) await open.commit(queued ? queued.opened : direct).catch((error: unknown) => {
        throw hostIoError(error, 'committing the changes', real);
      });
      return result;
    } finally {
      await open.dispose();
    }
  }));
}

