/**
 * Read-ahead of a template's metadata for thin instances. A thin instance reads its template's
 * metadata in place — resize2fs, the two libext2fs sessions and the final e2fsck — instead of
 * copying the template. When the template is not in the page cache, e2fsck's pass 1 and 2 then
 * wait for ~1,500 scattered 4 KiB reads (ext3 indirect blocks, directories) one after the other,
 * and the kernel's read-around of each pulls in ~60 MiB (measured: a cold final check 0.8–0.9 s,
 * warm 0.2 s, on the seed template). The final check of an instance records which ranges of the
 * template it read; the next instance of the same template (same identity as docs/instance.md's
 * rule 1: path, device, inode, size, mtime, first 64 KiB) asks the kernel to read exactly those
 * (posix_fadvise WILLNEED, all queued at once) before its first step. Only a hint: a stale or
 * missing record costs time, never correctness — every step still reads the template itself.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { identityChange, type BackingIdentity } from '../disk/backing-identity.js';
import { libc } from '../disk/libc.js';
import { fileAllocation } from '../disk/seek-data.js';

/** posix_fadvise's WILLNEED (linux/fadvise.h). */
const POSIX_FADV_WILLNEED = 3;
/** Ranges kept per template at most (the seed's final check needs ~800 after merging). */
export const MAX_READ_SET_RANGES = 65_536;
/** A record file larger than this is not read (bounds a damaged or hostile cache file). */
const MAX_RECORD_FILE_BYTES = 4 * 1024 * 1024;
/** Ranges closer than this are advised as one (fewer calls, the same few blocks read). */
const MERGE_GAP = 64 * 1024;

/** diskwright's cache directory: $DISKWRIGHT_CACHE_DIR, $XDG_CACHE_HOME/diskwright or ~/.cache/diskwright. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DISKWRIGHT_CACHE_DIR) return env.DISKWRIGHT_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'diskwright');
}

/** Where the read set of the template with `identity` is kept (one file per identity). */
export function readSetPath(identity: BackingIdentity, env: NodeJS.ProcessEnv = process.env): string {
  const key = createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 32);
  return join(cacheDir(env), 'readahead', `${key}.json`);
}

interface ReadSetFile {
  readonly version: 1;
  readonly identity: BackingIdentity;
  /** Flat `[position, length, …]`, sorted, non-overlapping, inside the template. */
  readonly ranges: readonly number[];
}

/** True when a read set is kept for this identity (the final check then need not record one). */
export function hasReadSet(identity: BackingIdentity, env: NodeJS.ProcessEnv = process.env): boolean {
  return statSync(readSetPath(identity, env), { throwIfNoEntry: false }) !== undefined;
}

/**
 * Keeps what a clean final check read as the template's read set: the ranges inside the
 * template that hold data there (its holes need no reading), merged, at most
 * {@link MAX_READ_SET_RANGES}. Best effort: an unwritable cache only means no read-ahead later.
 */
export function saveReadSet(template: string, identity: BackingIdentity, reads: readonly number[], env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    const ranges = dataRanges(template, identity.size, reads);
    if (ranges.length === 0) return false;
    const path = readSetPath(identity, env);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    const temp = `${path}.${process.pid}.tmp`;
    const record: ReadSetFile = { version: 1, identity, ranges };
    writeFileSync(temp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    renameSync(temp, path);
    return true;
  } catch {
    return false;
  }
}

/** The parts of `reads` inside `[0, size)` of `template` that are data in the file, merged. */
function dataRanges(template: string, size: number, reads: readonly number[]): number[] {
  const fd = openSync(template, 'r');
  try {
    const out: number[] = [];
    for (let i = 0; i + 1 < reads.length && out.length < 2 * MAX_READ_SET_RANGES; i += 2) {
      const start = reads[i]!;
      const end = Math.min(size, start + reads[i + 1]!);
      if (end <= start) continue;
      const extents = fileAllocation(fd, start, end - start) ?? [{ position: start, length: end - start, state: 'data' as const }];
      for (const extent of extents) {
        if (extent.state !== 'data') continue;
        const last = out.length - 2;
        if (last >= 0 && extent.position <= out[last]! + out[last + 1]! + MERGE_GAP) out[last + 1] = extent.position + extent.length - out[last]!;
        else out.push(extent.position, extent.length);
      }
    }
    return out.slice(0, 2 * MAX_READ_SET_RANGES);
  } finally {
    closeSync(fd);
  }
}

async function adviseWholeFile(sys: NonNullable<ReturnType<typeof libc>>, path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await sys.posixFadviseAsync(fd, 0, 0, POSIX_FADV_WILLNEED);
  } finally {
    closeSync(fd);
  }
}

/** The kept read set of `identity`, or undefined (none, another identity, or not well-formed). */
function loadReadSet(identity: BackingIdentity, env: NodeJS.ProcessEnv): readonly number[] | undefined {
  const path = readSetPath(identity, env);
  const info = statSync(path, { throwIfNoEntry: false });
  if (!info || !info.isFile() || info.size > MAX_RECORD_FILE_BYTES) return undefined;
  let record: Partial<ReadSetFile>;
  try {
    record = JSON.parse(readFileSync(path, 'utf8')) as Partial<ReadSetFile>;
  } catch {
    rmSync(path, { force: true });
    return undefined;
  }
  const ranges = record.ranges;
  if (record.version !== 1 || !record.identity || !Array.isArray(ranges) || ranges.length % 2 !== 0 || ranges.length > 2 * MAX_READ_SET_RANGES) return undefined;
  try {
    if (identityChange(record.identity, identity) !== undefined) return undefined;
  } catch {
    return undefined;
  }
  let previousEnd = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    const [position, length] = [ranges[i], ranges[i + 1]];
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position! < previousEnd || length! <= 0 || position! + length! > identity.size) return undefined;
    previousEnd = position! + length!;
  }
  return ranges as number[];
}

/**
 * Asks the kernel to read the template's kept read set now (posix_fadvise WILLNEED, on a libuv
 * thread, all ranges queued before any is waited for), so that the instance's steps find the
 * template's metadata in the page cache; and all of `layer` (the shared grown layer, a few MiB
 * that every step reads) when given. `identity` undefined: the layer only (a qcow2 template's
 * reads are not its file's offsets). Resolves with the template bytes advised (0: no record, or
 * no posix_fadvise on this host); never rejects.
 */
export async function prefetchTemplate(template: string, identity: BackingIdentity | undefined, env: NodeJS.ProcessEnv = process.env, layer?: string): Promise<number> {
  try {
    const sys = libc();
    if (sys && layer !== undefined) await adviseWholeFile(sys, layer);
    const ranges = sys && identity !== undefined ? loadReadSet(identity, env) : undefined;
    if (!sys || !ranges) return 0;
    const fd = openSync(template, 'r');
    let advised = 0;
    try {
      for (let i = 0; i < ranges.length; i += 2) {
        if ((await sys.posixFadviseAsync(fd, ranges[i]!, ranges[i + 1]!, POSIX_FADV_WILLNEED)) === 0) advised += ranges[i + 1]!;
      }
    } finally {
      closeSync(fd);
    }
    return advised;
  } catch {
    return 0;
  }
}
