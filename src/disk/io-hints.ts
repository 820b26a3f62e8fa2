import { libc } from './libc.js';

/**
 * Kernel hints that let reads and writes overlap instead of running one after the other: a
 * source is read ahead while other work runs, and written data starts going to disk while the
 * copy continues. Hints only — no result depends on them, and flush() is still what makes data
 * durable. Without the native calls (not Linux, no koffi) they do nothing.
 */

/** posix_fadvise POSIX_FADV_WILLNEED (linux/fadvise.h). */
const FADV_WILLNEED = 3;
/** sync_file_range SYNC_FILE_RANGE_WRITE: start writeback of dirty pages, do not wait (linux/fs.h). */
const SYNC_FILE_RANGE_WRITE = 2;

/**
 * Asks the kernel to start reading `[position, position + length)` of `fd` into the page cache,
 * from a libuv thread: WILLNEED submits the reads itself and waits while the device queue is
 * full, which on a busy disk held up the main thread (and the debugfs run it was about to start).
 * A call that runs after `fd` was closed fails with EBADF or advises whatever file got the number:
 * harmless, it is only a hint.
 */
export function readAhead(fd: number, position: number, length: number): void {
  if (length > 0) libc()?.posixFadviseAsync(fd, position, length, FADV_WILLNEED).catch(() => undefined);
}

/** Per descriptor: the one sync_file_range call in flight and the range asked for meanwhile. */
const writebacks = new Map<number, { next?: { from: number; to: number } }>();

/**
 * Starts writing the dirty pages of `[position, position + length)` of `fd` to disk without
 * waiting, so a later fdatasync finds most of them written (sync_file_range(2) on a libuv thread,
 * as it blocks while the device queue is full; it makes nothing durable by itself: no metadata, no
 * disk cache flush). One call per descriptor is in flight at a time (ranges asked for meanwhile
 * are merged into the next), so a huge copy never fills the libuv pool with blocked calls. A call
 * still in flight when `fd` is closed fails with EBADF, or starts writeback of whatever file got
 * the number: harmless either way, it is only a hint.
 */
export function startWriteback(fd: number, position: number, length: number): void {
  const sys = libc();
  if (!sys || length <= 0) return;
  const busy = writebacks.get(fd);
  if (busy) {
    const next = busy.next;
    busy.next = next ? { from: Math.min(next.from, position), to: Math.max(next.to, position + length) } : { from: position, to: position + length };
    return;
  }
  const state: { next?: { from: number; to: number } } = {};
  writebacks.set(fd, state);
  const run = (from: number, to: number): void => {
    sys.syncFileRange(fd, from, to - from, SYNC_FILE_RANGE_WRITE, () => {
      const next = state.next;
      delete state.next;
      if (next) run(next.from, next.to);
      else writebacks.delete(fd);
    });
  };
  run(position, position + length);
}
