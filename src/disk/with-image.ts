import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DiskwrightError } from '../errors.js';
import { removeTempSoon } from '../io/atomic.js';
import { hasPendingRecord, recordPath, rollBackInterruptedCommit } from './commit.js';
import { assertNoDependents } from './dependents.js';
import { isOpenElsewhere } from './holders.js';
import { hostError } from './host-error.js';
import { completePendingRenames, hasPendingRenames, pendingRenamesError } from '../io/rename-set.js';
import { lockImage, type ImageAccess, type ImageLock } from './lock.js';

/** Options of {@link withImage}. */
export interface WithImageOptions {
  readonly access: ImageAccess;
  /** Queue behind another diskwright process instead of failing (`--wait`). */
  readonly wait?: boolean;
  readonly signal?: AbortSignal;
}

/** What {@link withImage} hands to its callback. */
export interface ImageContext {
  /** The image's real path: open this one (a lock is on it). */
  readonly path: string;
  readonly access: ImageAccess;
  /** True when this call rolled back an interrupted commit before running. */
  readonly rolledBack: boolean;
}

/** The one line every reader prints when an interrupted commit is pending. */
export function pendingCommitError(image: string): DiskwrightError {
  return new DiskwrightError('E_NEEDS_RECOVERY', `${image}: an interrupted diskwright write left ${recordPath(image)}; the image may be half-written`, {
    path: image,
    hint: `run \`diskwright recover ${image}\` to roll the interrupted write back, then run this command again`,
  });
}

/**
 * Removes leftover temp files of killed runs beside `image` (`.NAME.diskwright-*.tmp`) that no
 * other process has open; returns their paths.
 */
export function removeLeftoverTemps(image: string): string[] {
  const dir = dirname(image);
  const prefix = `.${basename(image)}.diskwright-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    // Atomic outputs are made without this lock (a new file over an existing one): spare any
    // temp file a live process still has open.
    if (isOpenElsewhere(path)) continue;
    // A killed run's spill can be GiBs still in the page cache: freed off the main thread.
    removeTempSoon(path);
    removed.push(path);
  }
  return removed;
}

/**
 * How every command opens an image: takes the lock (writers exclusive, readers shared; a second
 * writer fails at once with E_LOCKED unless `wait`), then checks for an interrupted commit —
 * writers roll it back, readers refuse with E_NEEDS_RECOVERY naming `diskwright recover` — and,
 * for writers, removes leftover temp files of killed runs. Then runs `fn` and always releases.
 * Nested calls in one process share the outer lock. A path that is not a regular file (missing,
 * a directory) runs `fn` unlocked, so the caller's own validation reports it.
 */
export async function withImage<T>(image: string, options: WithImageOptions, fn: (context: ImageContext) => Promise<T>): Promise<T> {
  // A set of outputs (template + manifest + kernel) past its commit point: readers refuse,
  // writers complete it (roll forward) — before the existence check, the image may be one of them.
  if (hasPendingRenames(image)) {
    if (options.access === 'read') throw pendingRenamesError(image);
    completePendingRenames(image);
  }
  // Nothing to lock or recover: the caller reports a missing image or a directory its own way.
  if (!statSync(image, { throwIfNoEntry: false })?.isFile()) return fn({ path: image, access: options.access, rolledBack: false });
  // A template that thin instances read through must not change under them (checked before the
  // lock: the template is read-only then, and opening it for writing would fail less clearly).
  if (options.access === 'write') assertNoDependents(image, 'write');
  const lock: ImageLock = await lockImage(image, options);
  try {
    let rolledBack = false;
    if (options.access === 'read') {
      if (hasPendingRecord(lock.path)) throw pendingCommitError(image);
    } else if (lock.outermost && existsSync(recordPath(lock.path))) {
      // Also a record that was never armed (prepared for a commit, zeros): the writer drops it. Not
      // in a nested call: a record there is the outer session's own, prepared for its commit.
      try {
        rolledBack = rollBackInterruptedCommit(lock.path);
      } catch (error) {
        throw hostError(error, image, 'rolling back an interrupted commit of');
      }
    }
    if (options.access === 'write' && lock.outermost) removeLeftoverTemps(lock.path);
    return await fn({ path: lock.path, access: options.access, rolledBack });
  } finally {
    lock.release();
  }
}

/**
 * Rolls back an interrupted commit on `image` (under the write lock), completes a set of outputs
 * an interrupted run left half renamed (template + manifest, src/io/rename-set.ts) and removes
 * leftover temp files of killed runs: `diskwright recover`. Returns true when there was anything
 * to roll back or complete.
 */
export async function recoverImage(image: string, options: { wait?: boolean; signal?: AbortSignal } = {}): Promise<boolean> {
  const completed = hasPendingRenames(image);
  // Nothing to recover is an answer only for an image file: a typo, a directory or a FIFO is an error.
  if (!completed) {
    const info = statSync(image, { throwIfNoEntry: false });
    if (!info) throw new DiskwrightError('E_NOT_FOUND', `image ${image} not found`, { path: image, hint: 'give the path of the disk image the interrupted command worked on' });
    if (!info.isFile()) throw new DiskwrightError('E_INVALID_ARGUMENT', `${image} is not a regular file`, { path: image, hint: 'give the path of the disk image the interrupted command worked on' });
  }
  const rolledBack = await withImage(image, { access: 'write', ...options }, async ({ rolledBack }) => rolledBack);
  return completed || rolledBack;
}
