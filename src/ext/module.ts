import { createRequire } from 'node:module';
import { DiskwrightError } from '../errors.js';

/** The parts of the `ext2fs` npm package (libext2fs 1.44.1 in WASM) this layer uses. */
export interface Ext2fsStats {
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly ino: number;
  readonly size: number;
  /** The filesystem's block size. */
  readonly blksize: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
}
export interface Ext2fsHandle {
  readonly fd: number;
  chmod(mode: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
  write(buffer: Buffer, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number }>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): void;
}
export interface Ext2fsPromises {
  open(path: string, flags: string | number, mode?: number): Promise<Ext2fsHandle>;
  close(fd: number): Promise<void>;
  // No readdir: the package's leaks an open file per call (see ext/dirent.ts); directories are read as files.
  stat(path: string): Promise<Ext2fsStats>;
  lstat(path: string): Promise<Ext2fsStats>;
  readlink(path: string, options?: { encoding: 'buffer' }): Promise<Buffer>;
  mkdir(path: string, mode?: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  lchown(path: string, uid: number, gid: number): Promise<void>;
  readonly openFiles: Map<number, number>;
}
export interface Ext2fsMounted {
  readonly promises: Ext2fsPromises;
}
interface Ext2fsModule {
  mount(disk: unknown, offset: number): Promise<Ext2fsMounted>;
  umount(fs: Ext2fsMounted): Promise<void>;
}

const require = createRequire(import.meta.url);
let loaded: Ext2fsModule | undefined;

/** The package, loaded on first use (its WASM instance lives as long as the process). */
export function ext2fsModule(): Ext2fsModule {
  if (!loaded) {
    // The package's emscripten glue installs process-wide handlers that rethrow every uncaught
    // error (printing its whole one-line minified source); our CLI reports errors itself.
    const before = {
      uncaughtException: new Set(process.listeners('uncaughtException')),
      unhandledRejection: new Set(process.listeners('unhandledRejection')),
    };
    loaded = require('ext2fs') as Ext2fsModule;
    acceptNegativeTimes();
    for (const listener of process.listeners('uncaughtException')) {
      if (!before.uncaughtException.has(listener)) process.removeListener('uncaughtException', listener);
    }
    for (const listener of process.listeners('unhandledRejection')) {
      if (!before.unhandledRejection.has(listener)) process.removeListener('unhandledRejection', listener);
    }
  }
  return loaded;
}

/**
 * The package returns i_atime/i_mtime/i_ctime as a C int and treats every negative return as an
 * errno, so stat() of any file dated before 1970 or after 2038-01-19 (bit 31 set) failed. Such a
 * "failure" of the three time getters is the time itself (signed, as the kernel reads it); the
 * session adds the epoch bits of large inodes (readInodeTimes).
 */
function acceptNegativeTimes(): void {
  const binding = require('ext2fs/lib/binding.js') as Record<string, (fd: number) => Promise<number>>;
  for (const name of ['stat_i_atime', 'stat_i_mtime', 'stat_i_ctime']) {
    const original = binding[name];
    if (typeof original !== 'function') continue;
    binding[name] = (fd: number) =>
      original(fd).catch((error: unknown) => {
        const e = error as { name?: string; syscall?: string; errno?: unknown };
        if (e?.name === 'ErrnoException' && e.syscall === `node_ext2fs_${name}` && typeof e.errno === 'number') return -e.errno;
        throw error;
      });
  }
}

/**
 * After an emscripten abort (e.g. `Aborted(OOM)`) the WASM instance is dead for good: drop it from
 * the require cache so the next session gets a fresh instance.
 */
export function resetExt2fsModule(): void {
  const libDir = require.resolve('ext2fs').replace(/index\.js$/, '');
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(libDir)) delete require.cache[key];
  }
  loaded = undefined;
}

/** True for the errors an emscripten abort throws (the instance must then be replaced). */
export function isWasmAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'RuntimeError' || /^Aborted\(/.test(error.message));
}

const openImages = new Set<string>();

/**
 * Runs `fn` while `key` (the image's real path) is marked open. A second session on the same image
 * in this process — nested or concurrent — fails fast instead of deadlocking or committing over
 * the first one's changes. Sessions on different images may run side by side (the package queues
 * every call into the single-threaded WASM module).
 */
export async function exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
  if (openImages.has(key)) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `${key} is already open in another filesystem session of this process`, {
      path: key,
      hint: 'finish the other session first (sessions on one image cannot be nested)',
    });
  }
  openImages.add(key);
  try {
    return await fn();
  } finally {
    openImages.delete(key);
  }
}
