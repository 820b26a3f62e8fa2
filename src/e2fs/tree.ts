/**
 * The Tree hook contract: a read-only directory tree that is not on the host (a tar archive, an
 * in-memory model) which `mke2fs -d /virtual/root` copies into a new filesystem. The WASM
 * runtime serves every syscall under a tree's root from it: chdir, opendir/getdents, lstat/stat,
 * open/read/lseek, readlink and l/getxattr. Calls are synchronous (they happen inside a
 * syscall of the running tool). Errors: return `null` from `lstat` for "no such entry"; anything
 * thrown reaches the tool as EIO and fails the run with E_IO.
 */

/** d_type values for {@link TreeEntry.type} (Linux <dirent.h>). */
export const DT = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

/** What `lstat` reports for an entry; mode includes the S_IFMT type bits (S_IFREG 0o100000 …). */
export interface TreeStat {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Device number of a character/block device (Linux encoding, as `makedev`), else 0. */
  readonly rdev: number;
  readonly size: number;
  /** > 1 with the same `ino` on several entries: mke2fs makes them one inode (hard links). */
  readonly nlink: number;
  /** Unique per inode within the tree (nonzero). */
  readonly ino: number;
  /** Times in nanoseconds since the epoch (bigint: no rounding, no 2038 limit). */
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/** One directory entry (without `.` and `..`). */
export interface TreeEntry {
  readonly name: string;
  /** One of {@link DT}. */
  readonly type: number;
}

/**
 * A directory tree served to the WASM tools. `rel` is the path below the root without a leading
 * slash: `''` for the root itself, `'etc/passwd'` below it; it never contains `.` or `..` parts.
 */
export interface Tree {
  /** The entry itself (symlinks are not followed); `null` if there is none. */
  lstat(rel: string): TreeStat | null;
  /** Entries of a directory, in any order (mke2fs sorts them). */
  readdir(rel: string): readonly TreeEntry[];
  /** A symlink's target, as stored. */
  readlink(rel: string): string;
  /** Copies up to `buffer.length` bytes of a regular file from `position`; returns the count (0 at the end). */
  read(rel: string, buffer: Uint8Array, position: number): number;
  /** Extended attribute names (`security.capability`, `system.posix_acl_access`, `user.x` …). */
  listxattr(rel: string): readonly string[];
  /** An attribute's raw value (ACLs in the kernel's xattr encoding), `null` if absent. */
  getxattr(rel: string, name: string): Uint8Array | null;
  /** Optional: called by the worker after the run. */
  close?(): void;
}

/** What a tree factory module's `createTrees(args, context)` returns: absolute root path → Tree. */
export type TreeMap = Readonly<Record<string, Tree>>;

/** Passed to `createDisks` / `createTrees` inside the worker. */
export interface HookContext {
  /** Registers a host fd the hook opened, so the pool closes it if the run is killed. */
  trackFd(fd: number): void;
  /** Unregisters it after the hook closed it. */
  untrackFd(fd: number): void;
}
