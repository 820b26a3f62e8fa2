import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fsyncDirectory, fsyncDirOf } from './fsync-dir.js';
import { basename, dirname, isAbsolute } from 'node:path';
import { DiskwrightError } from '../errors.js';
import { tempPathBeside } from './atomic.js';
import { testFaultPoint } from './test-fault.js';

/**
 * Several outputs that must appear together (a template and its manifest, plus the kernel files
 * it names): each is complete and fsynced under a temp name beside its final path, then a small
 * record `PRIMARY.diskwright-renames` lists the renames, then they happen, then the record goes.
 * The record is the commit point: a crash before it leaves every old file as it was (the temps
 * are leftovers); a crash after it is completed — rolled forward — by the next writer
 * ({@link completePendingRenames}), and readers refuse until then. So the set is old or new,
 * never a mix (e.g. a manifest beside a missing or an older template).
 */

export const RENAMES_SUFFIX = '.diskwright-renames';
/** Renames a valid record may hold (named limit on what we read back). */
const MAX_RENAMES = 64;
const MAX_RECORD_BYTES = 64 * 1024;

/** Path of the rename record of the set whose primary output is `primary`. */
export function renamesRecordPath(primary: string): string {
  return `${primary}${RENAMES_SUFFIX}`;
}

/** True when an interrupted run left renames of `primary`'s set to complete. */
export function hasPendingRenames(primary: string): boolean {
  return existsSync(renamesRecordPath(primary));
}

function fsyncPath(path: string, flags: 'r' | 'r+' = 'r'): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A temp path must be the one {@link tempPathBeside} gives for its final path (no escapes). */
function isTempOf(temp: string, final: string): boolean {
  return isAbsolute(final) && dirname(temp) === dirname(final) && basename(temp).startsWith(`.${basename(final)}.diskwright-`) && basename(temp).endsWith('.tmp') && !temp.includes('/../');
}

/**
 * Renames every `[temp, final]` of `pairs` (absolute paths; each temp from `tempPathBeside(final)`)
 * as one set, see the module comment. The temps are fsynced first.
 */
export function commitRenames(primary: string, pairs: readonly (readonly [temp: string, final: string])[]): void {
  for (const [temp, final] of pairs) {
    if (!isTempOf(temp, final)) throw new DiskwrightError('E_INVALID_ARGUMENT', `internal: ${temp} is not a temp file beside ${final}`, { path: final });
    fsyncPath(temp, 'r+');
  }
  const record = renamesRecordPath(primary);
  const temp = tempPathBeside(record);
  writeFileSync(temp, `${JSON.stringify({ version: 1, renames: pairs })}\n`, { flag: 'wx', mode: 0o600 });
  fsyncPath(temp, 'r+');
  renameSync(temp, record);
  fsyncDirOf(record);
  testFaultPoint('renames-recorded');
  applyRenames(pairs);
  rmSync(record, { force: true });
  fsyncDirOf(record);
}

function applyRenames(pairs: readonly (readonly [string, string])[]): void {
  const dirs = new Set<string>();
  for (const [temp, final] of pairs) {
    // Done already (a crash after this rename): nothing to do for this one.
    if (existsSync(temp)) {
      renameSync(temp, final);
      testFaultPoint('renamed');
    }
    dirs.add(dirname(final));
  }
  for (const dir of dirs) fsyncDirectory(dir);
}

function damaged(path: string, why: string): DiskwrightError {
  return new DiskwrightError('E_IO', `rename record ${path} is damaged (${why})`, {
    path,
    hint: 'remake the output (e.g. `diskwright template make … --force`), then delete the record',
  });
}

/**
 * Completes the renames an interrupted run left for `primary`'s set (roll forward; the caller is
 * a writer). Returns false when there were none.
 */
export function completePendingRenames(primary: string): boolean {
  const record = renamesRecordPath(primary);
  let text: string;
  try {
    text = readFileSync(record, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (text.length > MAX_RECORD_BYTES) throw damaged(record, `larger than ${MAX_RECORD_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw damaged(record, 'not JSON');
  }
  const renames = (parsed as { renames?: unknown })?.renames;
  if (!Array.isArray(renames) || renames.length > MAX_RENAMES) throw damaged(record, 'no list of renames');
  const pairs: [string, string][] = [];
  for (const pair of renames) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string' || !isTempOf(pair[0], pair[1])) {
      throw damaged(record, 'a rename is not a temp file beside its output');
    }
    pairs.push([pair[0], pair[1]]);
  }
  applyRenames(pairs);
  rmSync(record, { force: true });
  fsyncDirOf(record);
  return true;
}

/** The one line a reader prints when a set of outputs is half renamed. */
export function pendingRenamesError(primary: string): DiskwrightError {
  return new DiskwrightError('E_NEEDS_RECOVERY', `${primary}: an interrupted diskwright run left ${renamesRecordPath(primary)}; its outputs are not all in place yet`, {
    path: primary,
    hint: `run \`diskwright recover ${primary}\` to complete it, then run this command again`,
  });
}
