import { createRequire } from 'node:module';

/**
 * The libc calls Node does not expose (lseek with SEEK_DATA/SEEK_HOLE, posix_fadvise, sync_file_range),
 * called through koffi 3.3.4: a prebuilt FFI whose per-platform binaries come from npm, so no
 * compiler is needed. Loaded lazily (10–30 ms) because only bulk readers and writers need it;
 * undefined where it cannot load (then callers keep Node-only behaviour). Add a call here, not a
 * second loader.
 */
export interface Libc {
  lseek(fd: number, offset: number, whence: number): number;
  /** posix_fadvise(2): 0 or an errno (it does not set errno). */
  posixFadvise(fd: number, offset: number, length: number, advice: number): number;
  /** The same on a libuv thread (WILLNEED may wait for room in the device's request queue). */
  posixFadviseAsync(fd: number, offset: number, length: number, advice: number): Promise<number>;
  /**
   * sync_file_range(2) on a libuv thread (it blocks while the device queue is full); calls back
   * with its result, 0 or -1.
   */
  syncFileRange(fd: number, offset: number, nbytes: number, flags: number, callback: (result: number) => void): void;
  /** The address of a buffer's first byte (to align O_DIRECT buffers without trial reads). */
  address(buffer: Uint8Array): bigint;
  /** errno of the last call made through this object. */
  errno(): number;
}

type NativeCall = ((...args: number[]) => number) & { async(...args: [...number[], (error: unknown, result: number) => void]): void };

interface Koffi {
  load(path: string | null): { func(signature: string): NativeCall };
  address(value: unknown): bigint;
  errno(): number;
}

const require = createRequire(import.meta.url);
let loaded: Libc | null | undefined;

/** The libc calls, or undefined on hosts other than Linux or without koffi's prebuilt binary. */
export function libc(): Libc | undefined {
  if (loaded === undefined) {
    loaded = null;
    if (process.platform === 'linux') {
      try {
        const koffi = require('koffi') as Koffi;
        // The process's own symbols: whichever libc node is linked against (glibc or musl).
        const lib = koffi.load(null);
        const lseek = lib.func('int64_t lseek(int fd, int64_t offset, int whence)');
        const fadvise = lib.func('int posix_fadvise(int fd, int64_t offset, int64_t len, int advice)');
        const syncFileRange = lib.func('int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags)');
        loaded = {
          lseek,
          posixFadvise: fadvise,
          posixFadviseAsync: (fd, offset, length, advice) =>
            new Promise((resolve, reject) => fadvise.async(fd, offset, length, advice, (error, result) => (error ? reject(error) : resolve(result)))),
          syncFileRange: (fd, offset, nbytes, flags, callback) => syncFileRange.async(fd, offset, nbytes, flags, (error, result) => callback(error ? -1 : result)),
          address: (buffer) => koffi.address(buffer),
          errno: () => koffi.errno(),
        };
      } catch {
        // No prebuilt binary for this platform.
      }
    }
  }
  return loaded ?? undefined;
}
