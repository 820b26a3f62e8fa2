import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';

/** What a copy of a host tree will read: regular files with data (each inode once) and their bytes. */
export interface TreeTotals {
  readonly files: number;
  readonly bytes: number;
}

/** Directories walked at once (lstat and readdir run on libuv's threads, beside the copy). */
const PARALLEL_DIRS = 4;

/**
 * Counts the files and bytes a copy of host directory `root` will read, so progress can say
 * "N of M files" from the start: a walk of metadata only (readdir + lstat, no data), run
 * concurrently with the copy. By default counted as mke2fs -d reads them — a regular file with
 * data counts once however many hard links it has, empty files count nothing; with `eachFile`
 * every regular file and every link counts (a copy that writes each one). Entries that vanish or
 * cannot be read are skipped (the copy reports them). Resolves undefined when `signal` fires or
 * `stop()` of the result is called first.
 */
export function countTree(root: string, signal?: AbortSignal, options: { readonly eachFile?: boolean } = {}): { readonly totals: Promise<TreeTotals | undefined>; stop(): void } {
  const eachFile = options.eachFile === true;
  let stopped = false;
  const stop = (): void => {
    stopped = true;
  };
  const seen = new Set<string>();
  let files = 0;
  let bytes = 0;
  const pending: string[] = [root];
  const walkOne = async (dir: string): Promise<void> => {
    let handle;
    try {
      handle = await opendir(dir);
    } catch {
      return;
    }
    for await (const entry of handle) {
      if (stopped || signal?.aborted) break;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile()) {
        const info = await lstat(path, { bigint: true }).catch(() => undefined);
        if (!info || !info.isFile() || (info.size === 0n && !eachFile)) continue;
        if (info.nlink > 1n && !eachFile) {
          const key = `${info.dev}:${info.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        files += 1;
        bytes += Number(info.size);
      }
    }
  };
  const totals = (async (): Promise<TreeTotals | undefined> => {
    const running = new Set<Promise<void>>();
    while (pending.length > 0 || running.size > 0) {
      if (stopped || signal?.aborted) return undefined;
      while (pending.length > 0 && running.size < PARALLEL_DIRS) {
        const job = walkOne(pending.pop()!).finally(() => running.delete(job));
        running.add(job);
      }
      if (running.size > 0) await Promise.race(running);
    }
    return stopped || signal?.aborted ? undefined : { files, bytes };
  })();
  return { totals, stop };
}
