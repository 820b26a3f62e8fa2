import { closeSync, fstatSync, openSync, realpathSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import { DISKWRIGHT_PROCESS_TITLE, findHolders, type FileHolder } from './holders.js';
import { hostError } from './host-error.js';
import { nativeExtensions } from './native.js';

/**
 * Inter-process exclusion on images: writers exclusive, readers shared, as kernel open-file-
 * description locks (fcntl F_OFD_SETLK through fs-native-extensions 1.5.1, a maintained N-API
 * addon with prebuilds for Node 20). The kernel drops the lock when its process dies, so a lock
 * is never stale. Locks are per real path and re-entrant inside one process.
 */

interface NativeLocks {
  tryLock(fd: number, offset?: number, length?: number, options?: { shared?: boolean }): boolean;
  unlock(fd: number, offset?: number, length?: number): void;
}
let native: NativeLocks | undefined;
function locks(): NativeLocks {
  native ??= nativeExtensions<NativeLocks>();
  return native;
}

/** What a command does with an image. */
export type ImageAccess = 'read' | 'write';

/** Options of {@link lockImage}. */
export interface LockOptions {
  readonly access: ImageAccess;
  /** Wait for the other process instead of failing at once (`--wait`). */
  readonly wait?: boolean;
  readonly signal?: AbortSignal;
}

/** A held lock; `release` is idempotent. */
export interface ImageLock {
  /** The image's real path (symlinks resolved). */
  readonly path: string;
  readonly access: ImageAccess;
  /** True for the outermost acquisition in this process (nested ones share its lock). */
  readonly outermost: boolean;
  release(): void;
}

interface Held {
  fd: number;
  access: ImageAccess;
  count: number;
}
const held = new Map<string, Held>();

/** Polling interval while waiting (`--wait`): the wait stays abortable by Ctrl-C. */
const WAIT_POLL_MS = 50;

/** The image's real path; a missing image is E_NOT_FOUND. */
export function realImagePath(path: string): string {
  try {
    const real = realpathSync(path);
    if (!statSync(real).isFile()) throw new DiskwrightError('E_INVALID_ARGUMENT', `${path} is not a regular file`, { path, hint: 'give a disk image file' });
    return real;
  } catch (error) {
    throw hostError(error, path, 'open');
  }
}

/** Takes the lock on `path` (see the module comment); the caller releases it. */
export async function lockImage(path: string, options: LockOptions): Promise<ImageLock> {
  const real = realImagePath(path);
  const mine = held.get(real);
  if (mine) {
    if (options.access === 'write' && mine.access === 'read') {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `${path} is open for reading in this process and cannot be written at the same time`, { path });
    }
    mine.count += 1;
    return handle(real, options.access, mine, false);
  }
  let retries = 0;
  for (;;) {
    throwIfAborted(options.signal);
    let fd: number;
    try {
      // A write lock needs a descriptor open for writing (POSIX).
      fd = openSync(real, options.access === 'write' ? 'r+' : 'r');
    } catch (error) {
      throw hostError(error, path, options.access === 'write' ? 'open for writing' : 'open');
    }
    let locked: boolean;
    try {
      locked = locks().tryLock(fd, 0, 0, { shared: options.access === 'read' });
    } catch (error) {
      closeSync(fd);
      throw hostError(error, path, 'lock');
    }
    if (locked) {
      // The path may have been replaced (renamed over) while we waited: lock the file it names now.
      const now = statSync(real, { throwIfNoEntry: false });
      const ours = fstatSync(fd);
      if (now && now.ino === ours.ino && now.dev === ours.dev) {
        const entry: Held = { fd, access: options.access, count: 1 };
        held.set(real, entry);
        return handle(real, options.access, entry, true);
      }
      closeSync(fd);
      continue;
    }
    closeSync(fd);
    if (!options.wait) {
      const error = busy(path, real, options.access);
      // The holder can finish between our try and the scan of the holders: with nobody left to
      // name, try again rather than report a lock nobody holds (bounded: a holder we cannot see,
      // such as a process in another PID namespace, still gets the refusal).
      if (error === undefined && (retries += 1) <= 3) continue;
      throw error ?? unseenBusyError(path);
    }
    await sleep(WAIT_POLL_MS, undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
  }
}

function handle(real: string, access: ImageAccess, entry: Held, outermost: boolean): ImageLock {
  let released = false;
  return {
    path: real,
    access,
    outermost,
    release() {
      if (released) return;
      released = true;
      entry.count -= 1;
      if (entry.count > 0) return;
      held.delete(real);
      try {
        locks().unlock(entry.fd);
      } finally {
        closeSync(entry.fd);
      }
    },
  };
}

/** The refusal naming who holds the lock, or undefined when nobody visible holds it any more. */
function busy(path: string, real: string, access: ImageAccess): DiskwrightError | undefined {
  const holders = findHolders(real).filter((h) => h.lock !== undefined);
  if (holders.length === 0) return undefined;
  // Only diskwright's own locks say what their holder does (whole-file, shared to read, exclusive
  // to write); QEMU and others lock bytes of their own choosing, and any program may be "node".
  if (holders.some((h) => h.program !== DISKWRIGHT_PROCESS_TITLE)) return foreignBusyError(path, holders);
  const writer = holders.find((h) => h.lock === 'WRITE');
  const pids = (writer ? [writer] : holders).map((h) => h.pid);
  return busyError(path, writer || access === 'read' ? 'write' : 'read', ` (pid ${pids.join(', ')})`);
}

/** "IMAGE is being changed/read by another diskwright process (pid N)". */
function busyError(path: string, heldFor: ImageAccess, who: string): DiskwrightError {
  const message = heldFor === 'write' ? `${path} is being changed by another diskwright process${who}` : `${path} is being read by another diskwright process${who}`;
  return new DiskwrightError('E_LOCKED', message, { path, hint: 'wait for it to finish, or pass --wait to queue behind it' });
}

/**
 * "IMAGE is locked by another process (pid N, qemu-io), which has it open for writing": the
 * program by its /proc name, what it does only as far as its descriptor's access mode tells.
 */
function foreignBusyError(path: string, holders: readonly FileHolder[]): DiskwrightError {
  const who = holders.map((h) => `pid ${h.pid}${h.program === undefined ? '' : `, ${h.program}`}`).join('; ');
  const modes = new Set(holders.map((h) => h.writable));
  const mode = modes.size !== 1 || modes.has(undefined) ? '' : modes.has(true) ? ', which has it open for writing' : ', which has it open for reading';
  const message = holders.length === 1 ? `${path} is locked by another process (${who})${mode}` : `${path} is locked by other processes (${who})`;
  return new DiskwrightError('E_LOCKED', message, { path, hint: 'wait for it to close the image (a VM or qemu-io using it, say), or pass --wait to queue behind it' });
}

/** The refusal when the holder cannot be seen (another PID namespace, /proc not readable). */
function unseenBusyError(path: string): DiskwrightError {
  return new DiskwrightError('E_LOCKED', `${path} is locked by another process`, { path, hint: 'wait for it to close the image, or pass --wait to queue behind it' });
}

/** Runs `fn` holding the lock; always releases it. */
export async function withImageLock<T>(path: string, options: LockOptions, fn: (lock: ImageLock) => Promise<T>): Promise<T> {
  const lock = await lockImage(path, options);
  try {
    return await fn(lock);
  } finally {
    lock.release();
  }
}
