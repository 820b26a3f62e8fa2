import type { ProgressCallback } from '../io/progress.js';
import type { DiskFormat } from '../disk/types.js';

/**
 * The in-image file-operations interface (issue: in-image editing). Implemented over libext2fs in
 * WASM; used by templating and the instance pipeline. Paths are absolute inside the image and are
 * normalized; a path that would escape the root with `..` is an `E_INVALID_ARGUMENT` error.
 */

export type FileKind = 'file' | 'directory' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export interface FileStat {
  readonly path: string;
  readonly name: string;
  readonly kind: FileKind;
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly ino: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  /** Symlink target, for symlinks. */
  readonly linkTarget?: string;
}

export interface WriteOptions {
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Create parent directories as needed. */
  readonly parents?: boolean;
  /** Bytes written so far (putFile, large writeFile). */
  readonly onProgress?: ProgressCallback;
}

export interface OpenFilesystemOptions {
  /** Partition number inside a disk image (MBR/GPT); the filesystem is then at its offset. */
  readonly partition?: number;
  /** Byte offset of the filesystem inside the image (alternative to `partition`). */
  readonly offset?: number;
  /** Open for writing. Writes are committed only when the callback resolves. */
  readonly write?: boolean;
  /** Allow opening a filesystem whose journal needs recovery (replays it first when writing). */
  readonly replayJournal?: boolean;
  readonly signal?: AbortSignal;
  /**
   * The image is a private temp file that the caller discards on failure and fsyncs itself before
   * publishing it (template make, instance create): the commit writes the changes straight in,
   * without the undo log and its fsyncs, which protect images other people already rely on.
   */
  readonly scratch?: boolean;
  /**
   * With `scratch`: the caller runs e2fsprogs 1.47's `e2fsck -fn` on the finished image and
   * discards the image unless it is clean (instance create). The write session then skips its own
   * 1.47 open check (a dumpe2fs run in a worker, which the session waited for: 10–100 ms per
   * session). Sound because what the open check guards against — libext2fs 1.44 writing into a
   * filesystem 1.47 would refuse — can then only reach a private file that the stronger full check
   * refuses before anyone sees it.
   */
  readonly checkedBeforePublish?: boolean;
  /**
   * The image's format (`--format raw|qcow2`; qcow2 trusts its backing chain). Default: the format
   * diskwright recorded on the file, else the qcow2 magic (a probed qcow2's backing file is refused).
   */
  readonly format?: DiskFormat;
  /**
   * Queue small `putFile` and `mkdir` calls and run them as one WASM debugfs 1.47 batch on the
   * session's overlay at the next other operation or before the commit (src/ext/queued.ts): one
   * open of the filesystem for all of them instead of a libext2fs mount plus a few calls each.
   * What only the filesystem can tell (a missing parent, an existing entry, a full filesystem) then
   * rejects that later operation, or withFilesystem before anything is committed, instead of the
   * queued call itself. For all-or-nothing callers (the CLI's `fs put`, `fs mkdir`). Default false:
   * every call settles with its own outcome.
   */
  readonly queueWrites?: boolean;
  /** Called when a write session starts committing its changes to the image (a display's step). */
  readonly onCommit?: () => void;
}

/** An open ext2/3/4 filesystem. */
export interface FilesystemSession {
  stat(path: string): Promise<FileStat>;
  lstat(path: string): Promise<FileStat>;
  exists(path: string): Promise<boolean>;
  readdir(path: string): Promise<FileStat[]>;
  readFile(path: string): Promise<Uint8Array>;
  /**
   * Streams a regular file in chunks of at most 1 MiB to `sink` (awaited); returns the byte count.
   * Optional so that simple in-memory fakes of this interface stay valid; withFilesystem has it.
   */
  readFileChunks?(path: string, sink: (chunk: Uint8Array) => Promise<void> | void): Promise<number>;
  readText(path: string): Promise<string>;
  writeFile(path: string, data: Uint8Array | string, options?: WriteOptions): Promise<void>;
  mkdir(path: string, options?: { parents?: boolean; mode?: number; uid?: number; gid?: number }): Promise<void>;
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  symlink(target: string, path: string, options?: { uid?: number; gid?: number }): Promise<void>;
  readlink(path: string): Promise<string>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  utimes(path: string, atime: Date, mtime: Date): Promise<void>;
  /** Copies a host file into the image, streaming it (mode from the host file unless given). */
  putFile(hostPath: string, path: string, options?: WriteOptions): Promise<void>;
  /**
   * Copies the contents of a host directory into `path` (created like `mkdir -p`): files, directories
   * and symlinks with their host permission bits; owners from options (default 0:0). Sockets, fifos
   * and devices are skipped and listed in the summary.
   */
  copyIn(hostDir: string, path: string, options?: { uid?: number; gid?: number; onProgress?: ProgressCallback }): Promise<TreeCopySummary>;
  /**
   * Copies a file, symlink or directory tree out of the image to `hostPath` (atomically: a temp
   * beside it, renamed when complete). Permission bits and access/modification times are kept;
   * owners are not (no root).
   */
  copyOut(path: string, hostPath: string, options?: { overwrite?: boolean; onProgress?: ProgressCallback }): Promise<TreeCopySummary>;
}

/** What a tree copy did. */
export interface TreeCopySummary {
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** File bytes copied. */
  readonly bytes: number;
  /** Paths not copied (special files), with the reason. */
  readonly skipped: readonly string[];
}
