import { closeSync, fsyncSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * fsyncs the directory holding `path`: makes a rename, link or unlink in it durable (a power loss
 * after a rename that returned can otherwise still show the old name — ext4 and xfs journal the
 * directory change at their next commit, not at the rename). The one helper for every writer.
 * Filesystems that refuse fsync on directories (EINVAL on some FUSE and network filesystems) are
 * accepted: there the rename is still ordered after the data.
 */
export function fsyncDirOf(path: string): void {
  fsyncDirectory(dirname(path));
}

/** fsyncs directory `dir` itself (see {@link fsyncDirOf}). */
export function fsyncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* a directory that cannot be fsynced: see above */
  }
}

/** {@link fsyncDirOf} on a libuv thread (the event loop keeps answering Ctrl-C and progress). */
export async function fsyncDirOfAsync(path: string): Promise<void> {
  try {
    const handle = await open(dirname(path), 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* a directory that cannot be fsynced: see fsyncDirOf */
  }
}
