import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { DiskwrightError, InvalidArgumentError, isDiskwrightError, throwIfAborted } from '../errors.js';
import type { ProgressCallback } from '../io/progress.js';
import { isOpenRefusal } from '../e2fs/open-check.js';
import { BULK_FILE_BYTES, debugfsQuote, sizeCommands } from './bulk.js';
import { normalizeImagePath } from './path.js';
import { checkMode, validateWriteOptions, type Ext2fsSession } from './session.js';
import type { FileStat, FilesystemSession, TreeCopySummary, WriteOptions } from './types.js';

/**
 * A write session that opens the bundled libext2fs (the `ext2fs` package) only when an operation
 * needs it. Small `putFile` and `mkdir` calls are queued as debugfs commands and run as one WASM
 * debugfs 1.47 run on the session's overlay — one open of the filesystem for all of them instead
 * of a mount plus a few libext2fs calls each. The queue is flushed before any other operation
 * (reads, stat, readdir, rm, … observe every earlier write) and when the session ends, before
 * the commit.
 *
 * Errors: a queued call checks its arguments and host source at once (those errors reject the
 * call itself, as before); what only the filesystem can tell (a missing parent, an existing
 * entry, a full filesystem) surfaces at the flush: when any command of the batch fails, the batch
 * stages nothing and every queued operation is replayed in order through the per-call path, so the
 * first failing one throws its usual DiskwrightError (E_NOT_FOUND, E_EXISTS, …) — from the
 * operation that caused the flush, or from withFilesystem before anything is committed. After such
 * an error the session is failed: every later call throws and nothing is committed.
 */

/** What the session needs from its opener (with-filesystem.ts). */
export interface QueueHost {
  /** Mounts libext2fs on the overlay (once) and returns the per-call session. */
  readonly open: () => Promise<Ext2fsSession>;
  /** Runs debugfs commands on the overlay; a failing batch throws and stages nothing. */
  readonly run: (commands: string[], step: string) => Promise<void>;
  /** inline_data: `write` needs the size set again (bulk.ts). */
  readonly fixSizes: boolean;
  readonly signal?: AbortSignal;
}

/** A queued operation: its debugfs commands and how to replay it through the per-call path. */
interface QueuedOperation {
  readonly commands: readonly string[];
  readonly replay: (session: Ext2fsSession) => Promise<void>;
  readonly done?: () => void;
}

/** Queued operations per debugfs run (bounds a run's stdin; the bulk tree path takes bigger ones). */
export const MAX_QUEUED = 4096;

/** The `sif` commands that set uid and gid when given (debugfs creates inodes owned by 0:0). */
function ownerCommands(quoted: string, uid: number | undefined, gid: number | undefined): string[] {
  const commands: string[] = [];
  if (uid !== undefined && uid !== 0) commands.push(`sif ${quoted} uid ${uid}`);
  if (gid !== undefined && gid !== 0) commands.push(`sif ${quoted} gid ${gid}`);
  return commands;
}

/** See the module comment. */
export class QueuedSession implements FilesystemSession {
  private readonly queued: QueuedOperation[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private session: Ext2fsSession | undefined;
  private closed = false;
  /** The error of a queued operation; the session is unusable afterwards. */
  private failure: unknown;

  constructor(private readonly host: QueueHost) {}

  /** The per-call session, if libext2fs was opened (withFilesystem closes it). */
  get opened(): Ext2fsSession | undefined {
    return this.session;
  }

  /** Runs `fn` after every earlier call (calls that were not awaited still run in order). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      if (this.closed) throw new DiskwrightError('E_INVALID_ARGUMENT', 'the filesystem session is closed', { hint: 'use the session only inside the withFilesystem callback' });
      if (this.failure) throw new DiskwrightError('E_INVALID_ARGUMENT', 'an earlier write of this session failed; nothing will be written', { cause: this.failure, hint: 'fix the failed operation and run the whole change again' });
      throwIfAborted(this.host.signal);
      return fn();
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Flushes the queue, then runs `fn` on the per-call session. */
  private direct<T>(fn: (session: Ext2fsSession) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      await this.flushQueue();
      return fn(await this.perCall());
    });
  }

  private async perCall(): Promise<Ext2fsSession> {
    this.session ??= await this.host.open();
    return this.session;
  }

  /** Queues `operation` (callers check that libext2fs is not open: then it goes per call). */
  private async enqueue(operation: QueuedOperation): Promise<void> {
    this.queued.push(operation);
    if (this.queued.length >= MAX_QUEUED) await this.flushQueue();
  }

  /**
   * Runs the queued operations as one debugfs batch; if the batch fails, replays them one by one
   * through the per-call path (the first failing one throws its usual error, the session fails).
   */
  private async flushQueue(): Promise<void> {
    if (this.queued.length === 0) return;
    const batch = this.queued.splice(0);
    try {
      await this.host.run(
        batch.flatMap((operation) => operation.commands),
        batch.length === 1 ? 'writing into the filesystem' : `writing ${batch.length} entries into the filesystem`,
      );
    } catch (error) {
      // Ctrl-C and a filesystem e2fsprogs 1.47 would not open stop the session; anything else is
      // found and reported by the per-call path.
      if (isDiskwrightError(error, 'E_ABORTED') || isOpenRefusal(error)) {
        this.failure = error;
        throw error;
      }
      try {
        const session = await this.perCall();
        // The per-call path reports its own progress.
        for (const operation of batch) await operation.replay(session);
      } catch (replayError) {
        this.failure = replayError;
        throw replayError;
      }
      return;
    }
    for (const operation of batch) operation.done?.();
  }

  /**
   * Ends the session: flushes the queue when `flush` (the callback succeeded) and refuses further
   * calls. Throws the error of a queued operation (see the module comment).
   */
  async close(flush: boolean): Promise<void> {
    const last = this.chain.then(async () => {
      if (this.failure && flush) throw this.failure;
      if (flush) await this.flushQueue();
    });
    this.closed = true;
    this.chain = last.catch(() => undefined);
    await last;
  }

  // ---- queued operations ---------------------------------------------------------------------

  async putFile(hostPath: string, path: string, options: WriteOptions = {}): Promise<void> {
    const p = normalizeImagePath(path);
    validateWriteOptions(options);
    return this.serial(async () => {
      // Synchronous: one local lstat, no thread-pool round trip per small file.
      let info;
      try {
        info = lstatSync(hostPath);
      } catch (error) {
        throw new DiskwrightError('E_NOT_FOUND', `host file ${hostPath} not found`, { path: hostPath, cause: error });
      }
      if (!info.isFile()) throw new InvalidArgumentError(`host path ${hostPath} is not a regular file`, { path: hostPath });
      const replay = (session: Ext2fsSession): Promise<void> => session.putFile(hostPath, path, options);
      const source = debugfsQuote(resolve(hostPath));
      const dest = debugfsQuote(p);
      // Large files take the bulk path (dw_alloc), `parents` needs lookups, odd names the per-call path.
      if (this.session || info.size >= BULK_FILE_BYTES || options.parents || p === '/' || !source || !dest) {
        await this.flushQueue();
        return replay(await this.perCall());
      }
      const hostMode = info.mode & 0o7777;
      // debugfs `write` keeps the host file's permission bits and makes the inode 0:0.
      const commands = [`write ${source} ${dest}`];
      if (this.host.fixSizes) commands.push(...sizeCommands(dest, info.size));
      if (options.mode !== undefined && options.mode !== hostMode) commands.push(`sif ${dest} mode 0${(0o100000 | options.mode).toString(8)}`);
      commands.push(...ownerCommands(dest, options.uid, options.gid));
      const report: ProgressCallback | undefined = options.onProgress;
      await this.enqueue({ commands, replay, ...(report ? { done: () => report({ bytes: info.size, total: info.size }) } : {}) });
    });
  }

  async mkdir(path: string, options: { parents?: boolean; mode?: number; uid?: number; gid?: number } = {}): Promise<void> {
    const p = normalizeImagePath(path);
    const mode = checkMode(options.mode ?? 0o755);
    validateWriteOptions(options);
    return this.serial(async () => {
      const replay = (session: Ext2fsSession): Promise<void> => session.mkdir(path, options);
      const quoted = debugfsQuote(p);
      if (this.session || options.parents || p === '/' || !quoted) {
        await this.flushQueue();
        return replay(await this.perCall());
      }
      // debugfs `mkdir` makes 0755 directories (umask 022) owned by 0:0.
      const commands = [`mkdir ${quoted}`];
      if (mode !== 0o755) commands.push(`sif ${quoted} mode 0${(0o040000 | mode).toString(8)}`);
      commands.push(...ownerCommands(quoted, options.uid, options.gid));
      await this.enqueue({ commands, replay });
    });
  }

  // ---- everything else: flush, then the per-call session -----------------------------------------

  stat(path: string): Promise<FileStat> {
    return this.direct((s) => s.stat(path));
  }
  lstat(path: string): Promise<FileStat> {
    return this.direct((s) => s.lstat(path));
  }
  exists(path: string): Promise<boolean> {
    return this.direct((s) => s.exists(path));
  }
  readdir(path: string): Promise<FileStat[]> {
    return this.direct((s) => s.readdir(path));
  }
  readFile(path: string): Promise<Uint8Array> {
    return this.direct((s) => s.readFile(path));
  }
  readFileChunks(path: string, sink: (chunk: Uint8Array) => Promise<void> | void): Promise<number> {
    return this.direct((s) => s.readFileChunks(path, sink));
  }
  readText(path: string): Promise<string> {
    return this.direct((s) => s.readText(path));
  }
  writeFile(path: string, data: Uint8Array | string, options?: WriteOptions): Promise<void> {
    return this.direct((s) => s.writeFile(path, data, options));
  }
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> {
    return this.direct((s) => s.rm(path, options));
  }
  symlink(target: string, path: string, options?: { uid?: number; gid?: number }): Promise<void> {
    return this.direct((s) => s.symlink(target, path, options));
  }
  readlink(path: string): Promise<string> {
    return this.direct((s) => s.readlink(path));
  }
  chmod(path: string, mode: number): Promise<void> {
    return this.direct((s) => s.chmod(path, mode));
  }
  chown(path: string, uid: number, gid: number): Promise<void> {
    return this.direct((s) => s.chown(path, uid, gid));
  }
  rename(from: string, to: string): Promise<void> {
    return this.direct((s) => s.rename(from, to));
  }
  utimes(path: string, atime: Date, mtime: Date): Promise<void> {
    return this.direct((s) => s.utimes(path, atime, mtime));
  }
  copyIn(hostDir: string, path: string, options?: { uid?: number; gid?: number; onProgress?: ProgressCallback }): Promise<TreeCopySummary> {
    return this.direct((s) => s.copyIn(hostDir, path, options));
  }
  copyOut(path: string, hostPath: string, options?: { overwrite?: boolean; onProgress?: ProgressCallback }): Promise<TreeCopySummary> {
    return this.direct((s) => s.copyOut(path, hostPath, options));
  }
}
