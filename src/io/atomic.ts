import { close, existsSync, openSync, rmSync } from 'node:fs';
import { access, constants, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DiskwrightError, reportAbort, throwIfAborted } from '../errors.js';
import { assertNoDependents } from '../disk/dependents.js';
import { errnoOf } from '../disk/host-error.js';
import { fsyncDirOfAsync } from './fsync-dir.js';
import { testFaultPoint } from './test-fault.js';

/** Temp files created by atomic writers that are still pending; removed on process exit too. */
const pendingTemps = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    // Last resort for a killed run: synchronous unlink of anything still pending.
    for (const path of pendingTemps) {
      try {
        rmSync(path, { force: true, recursive: true });
      } catch {
        /* best effort */
      }
    }
  });
}

/**
 * Removes the temp file `path` now — its name goes at once — and frees its data on a libuv thread:
 * dropping GiBs of a spill file's or a killed run's page cache took 0.4–1.5 s on the main thread,
 * where no Ctrl-C is answered. The name goes while the file is open (only a directory entry); the
 * asynchronous close then frees it. The process still waits for that close when it exits.
 */
export function removeTempSoon(path: string, openFd?: number): void {
  let fd = openFd;
  if (fd === undefined) {
    try {
      fd = openSync(path, 'r');
    } catch {
      // Missing or not openable: removed (or refused) by the plain removal below.
    }
  }
  try {
    rmSync(path, { force: true });
  } finally {
    if (fd !== undefined) close(fd, () => undefined);
  }
}

/** A temp path beside `target` (same directory, so the final rename is atomic). */
export function tempPathBeside(target: string): string {
  return join(dirname(target), `.${basename(target)}.diskwright-${randomBytes(6).toString('hex')}.tmp`);
}

export interface AtomicOutputOptions {
  /** Replace an existing target. Without it an existing target is an `E_EXISTS` error. */
  readonly overwrite?: boolean;
  /** fsync the file before renaming and its directory after (default true). */
  readonly fsync?: boolean;
  /**
   * Checked once more after the fsync, just before the rename: a Ctrl-C that lands while the data
   * is being flushed still leaves no output. Once it has fired, a failure is reported
   * (errors.ts reportAbort) before the temp file is removed.
   */
  readonly signal?: AbortSignal;
}

/**
 * Writes `target` atomically: `fn` fills a temp file beside it (opened read-write), which is
 * fsynced and renamed over `target` only when `fn` resolves; then its directory is fsynced, so
 * the new name survives a power loss once this resolves. Any failure or abort removes the temp
 * file and leaves `target` as it was.
 */
export async function withAtomicOutput<T>(
  target: string,
  fn: (handle: FileHandle, tempPath: string) => Promise<T>,
  options: AtomicOutputOptions = {},
): Promise<T> {
  await assertOutputWritable(target, options);
  installExitHook();
  const temp = tempPathBeside(target);
  pendingTemps.add(temp);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx+', 0o644).catch((error: unknown) => {
      throw outputError(target, error);
    });
    const result = await fn(handle, temp);
    testFaultPoint('output-written');
    if (options.fsync !== false) await handle.sync();
    await handle.close();
    handle = undefined;
    throwIfAborted(options.signal);
    if (!options.overwrite) await assertAbsent(target);
    testFaultPoint('output-synced');
    await rename(temp, target);
    pendingTemps.delete(temp);
    // The rename itself made durable: without it a power loss right after "done" can lose the output.
    if (options.fsync !== false) await fsyncDirOfAsync(target);
    testFaultPoint('output-renamed');
    return result;
  } catch (error) {
    // Interrupted: answered before the temp file (GiBs of page cache to drop) is removed.
    reportAbort(options.signal);
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true });
    pendingTemps.delete(temp);
    throw namedByTarget(error, temp, target, true);
  }
}

/**
 * Like {@link withAtomicOutput} but for work that needs a path, not a handle (e.g. a WASM tool
 * writing the file itself): `fn` receives the temp path, which it must create.
 */
export async function withAtomicPath<T>(
  target: string,
  fn: (tempPath: string) => Promise<T>,
  options: AtomicOutputOptions = {},
): Promise<T> {
  await assertOutputWritable(target, options);
  installExitHook();
  const temp = tempPathBeside(target);
  pendingTemps.add(temp);
  try {
    const result = await fn(temp);
    testFaultPoint('output-written');
    if (options.fsync !== false) {
      const handle = await open(temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    throwIfAborted(options.signal);
    if (!options.overwrite) await assertAbsent(target);
    testFaultPoint('output-synced');
    await rename(temp, target);
    pendingTemps.delete(temp);
    // The rename itself made durable: without it a power loss right after "done" can lose the output.
    if (options.fsync !== false) await fsyncDirOfAsync(target);
    testFaultPoint('output-renamed');
    return result;
  } catch (error) {
    reportAbort(options.signal);
    // The temp may be a directory tree (fs get of a directory); it is ours, so remove it whole.
    await rm(temp, { force: true, recursive: true });
    pendingTemps.delete(temp);
    throw namedByTarget(error, temp, target, false);
  }
}

/**
 * Checks, before any long work, that `target` can be written as a file: its directory exists and
 * is writable, and `target` is not a directory (nor an existing file without `overwrite`). The
 * errors name the path the user gave, never the temp file.
 */
export async function assertOutputWritable(target: string, options: { readonly overwrite?: boolean } = {}): Promise<void> {
  const existing = await stat(target).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new DiskwrightError('E_EXISTS', `${target} is a directory`, { path: target, hint: `name a file, e.g. ${join(target, 'out.img')}` });
  }
  if (existing && !options.overwrite) await assertAbsent(target);
  assertNoPendingRecord(target, existing !== undefined);
  // Replacing a template that thin instances use would leave them over a different file.
  if (existing?.isFile()) assertNoDependents(target, 'replace');
  const dir = dirname(target);
  const dirInfo = await stat(dir).catch(() => undefined);
  if (!dirInfo) throw new DiskwrightError('E_NOT_FOUND', `cannot write ${target}: directory ${dir} does not exist`, { path: target, hint: `create it first (mkdir -p ${dir})` });
  if (!dirInfo.isDirectory()) throw new DiskwrightError('E_IO', `cannot write ${target}: ${dir} is not a directory`, { path: target, hint: 'choose an output path inside a directory' });
  await access(dir, constants.W_OK | constants.X_OK).catch((error: unknown) => {
    throw outputError(target, error);
  });
}

/** The commit record beside an image (src/disk/commit.ts's RECORD_SUFFIX; not imported: cycle). */
const UNDO_SUFFIX = '.diskwright-undo';

/**
 * A new output must not inherit a commit record: beside an existing target it belongs to that
 * file's interrupted write (replacing it would lose the rollback and leave the record to be
 * applied to the new file), so that is refused; beside a missing target the record's image is
 * gone and it is removed, as it would corrupt the new file at the next writer's rollback.
 */
function assertNoPendingRecord(target: string, targetExists: boolean): void {
  const record = `${target}${UNDO_SUFFIX}`;
  if (!existsSync(record)) return;
  if (!targetExists) {
    rmSync(record, { force: true });
    return;
  }
  throw new DiskwrightError('E_NEEDS_RECOVERY', `${target}: an interrupted diskwright write left ${record}; replacing the image now would lose it`, {
    path: target,
    hint: `run \`diskwright recover ${target}\` first, then run this command again`,
  });
}

/** A failure to create the output (or its temp file beside it), named by the user's path. */
function outputError(target: string, error: unknown): DiskwrightError {
  if (error instanceof DiskwrightError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const dir = dirname(target);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    const why = code === 'EROFS' ? 'is on a read-only filesystem' : 'is not writable by you';
    return new DiskwrightError('E_IO', `cannot write ${target}: directory ${dir} ${why}`, { path: target, hint: 'choose an output path in a writable directory', cause: error });
  }
  if (code === 'ENOENT') return new DiskwrightError('E_NOT_FOUND', `cannot write ${target}: directory ${dir} does not exist`, { path: target, hint: `create it first (mkdir -p ${dir})`, cause: error });
  if (code === 'ENOSPC') return new DiskwrightError('E_IO', `cannot write ${target}: no space left on the device`, { path: target, hint: 'free some space or choose another directory', cause: error });
  return new DiskwrightError('E_IO', `cannot write ${target}: ${(error as Error).message}`, { path: target, cause: error });
}

/**
 * A failure writing the temp file, told as one writing `target`: the temp name is ours (and gone
 * once this is thrown), the user named `target`. ENOSPC says where space is missing; failures
 * elsewhere (the input, another file) pass unchanged. `byHandle`: `fn` wrote through our handle,
 * whose write errors name no path, so an ENOSPC naming no other file is the temp file's.
 */
function namedByTarget(error: unknown, temp: string, target: string, byHandle: boolean): unknown {
  if (!(error instanceof Error)) return error;
  const ours = mentions(error, temp) || (byHandle && errnoOf(error) === 'ENOSPC' && !namesAnotherPath(error, temp));
  if (!ours) return error;
  const offset = error instanceof DiskwrightError && error.offset !== undefined ? { offset: error.offset } : {};
  if (errnoOf(error) === 'ENOSPC') {
    const dir = dirname(target);
    return new DiskwrightError('E_IO', `cannot write ${target}: no space left on the filesystem holding ${dir} (ENOSPC)`, {
      path: target,
      ...offset,
      cause: error,
      hint: `free space on the filesystem of ${dir}, or choose an output on another filesystem; no partial output was left`,
    });
  }
  if (!(error instanceof DiskwrightError)) return outputError(target, error);
  const hint = error.hint === undefined ? {} : { hint: error.hint.replaceAll(temp, target) };
  return new DiskwrightError(error.code, error.message.replaceAll(temp, target), { path: target, ...offset, ...hint, cause: error });
}

/** True when `error` or one of its causes has a `path` field other than `path`. */
function namesAnotherPath(error: Error, path: string): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    const named = (e as { path?: unknown }).path;
    if (typeof named === 'string' && named !== path) return true;
  }
  return false;
}

/** True when `error` or one of its causes names `path` (its `path` field or its message). */
function mentions(error: unknown, path: string): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    if ((e as { path?: unknown }).path === path || e.message.includes(path)) return true;
  }
  return false;
}

async function assertAbsent(target: string): Promise<void> {
  const exists = await stat(target).then(
    () => true,
    () => false,
  );
  if (exists) {
    throw new DiskwrightError('E_EXISTS', `${target} already exists`, {
      path: target,
      hint: 'choose another path or pass --force to replace it',
    });
  }
}
