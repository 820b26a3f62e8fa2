import { rmSync } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DiskwrightError, throwIfAborted } from '../errors.js';

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
        rmSync(path, { force: true });
      } catch {
        /* best effort */
      }
    }
  });
}

/** A temp path beside `target` (same directory, so the final rename is atomic). */
export function tempPathBeside(target: string): string {
  return join(dirname(target), `.${basename(target)}.diskwright-${randomBytes(6).toString('hex')}.tmp`);
}

export interface AtomicOutputOptions {
  /** Replace an existing target. Without it an existing target is an `E_EXISTS` error. */
  readonly overwrite?: boolean;
  /** fsync the file before renaming (default true). */
  readonly fsync?: boolean;
  /**
   * Checked once more after the fsync, just before the rename: a Ctrl-C that lands while the data
   * is being flushed still leaves no output.
   */
  readonly signal?: AbortSignal;
}

/**
 * Writes `target` atomically: `fn` fills a temp file beside it (opened read-write), which is
 * fsynced and renamed over `target` only when `fn` resolves. Any failure or abort removes the temp
 * file and leaves `target` as it was.
 */
export async function withAtomicOutput<T>(
  target: string,
  fn: (handle: FileHandle, tempPath: string) => Promise<T>,
  options: AtomicOutputOptions = {},
): Promise<T> {
  if (!options.overwrite) await assertAbsent(target);
  installExitHook();
  const temp = tempPathBeside(target);
  pendingTemps.add(temp);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx+', 0o644);
    const result = await fn(handle, temp);
    if (options.fsync !== false) await handle.sync();
    await handle.close();
    handle = undefined;
    throwIfAborted(options.signal);
    if (!options.overwrite) await assertAbsent(target);
    await rename(temp, target);
    pendingTemps.delete(temp);
    return result;
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true });
    pendingTemps.delete(temp);
    throw error;
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
  if (!options.overwrite) await assertAbsent(target);
  installExitHook();
  const temp = tempPathBeside(target);
  pendingTemps.add(temp);
  try {
    const result = await fn(temp);
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
    await rename(temp, target);
    pendingTemps.delete(temp);
    return result;
  } catch (error) {
    await rm(temp, { force: true });
    pendingTemps.delete(temp);
    throw error;
  }
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
