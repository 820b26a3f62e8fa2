/**
 * Thin instances (`instance create --format qcow2`): the instance disk is a qcow2 overlay whose
 * backing file is the template (raw, or a qcow2 one). Every later step (resize2fs, rendering, the checks) opens it
 * through the block layer and writes clusters into the overlay only; the template is only read.
 *
 * Protection of the template (docs/instance.md, "Thin instances"):
 * - the overlay records the template's identity (device, inode, size, mtime and a hash of its
 *   first 64 KiB, ctime) in an xattr; every open of its chain checks it (src/disk/backing-identity.ts);
 * - the template's directory lists the overlays depending on it; every diskwright writer refuses
 *   to change or replace it while one lives, and the template is made read-only meanwhile
 *   (src/disk/dependents.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { backingIdentity, identityChange, recordBackingIdentity, recordedBackingIdentity, type BackingIdentity } from '../disk/backing-identity.js';
import { makeReadOnly, registerDependent, restoreIfUnused, unregisterDependent } from '../disk/dependents.js';
import { recordFormat } from '../disk/format-record.js';
import { createQcow2, DEFAULT_CLUSTER_SIZE } from '../disk/qcow2/create.js';
import { Qcow2Disk } from '../disk/qcow2/index.js';
import { resolveFormat } from '../disk/open.js';
import { DiskwrightError } from '../errors.js';
import { isSharedBase, pruneSharedBase } from './grown-base.js';
import { cacheDir } from './prefetch.js';

/** Options of {@link createThinOverlay}. */
export interface ThinOverlayOptions {
  /** Virtual size of the instance disk (the grown size). */
  readonly size: number;
  /** qcow2 cluster size (default 64 KiB, qemu-img's). */
  readonly clusterSize?: number;
}

/**
 * Creates `overlay` (which must not exist: the pipeline's temp path) as a qcow2 over `template`
 * (raw or qcow2 as diskwright resolves it, by its absolute real path, that format recorded as the
 * backing format), already at the grown size, marked as diskwright's qcow2 (its backing chain is
 * then trusted without --format) and carrying the template's identity.
 */
export function createThinOverlay(template: string, overlay: string, options: ThinOverlayOptions): void {
  // Before the identity is taken: listing the overlay then needs no chmod (its ctime is recorded).
  try {
    makeReadOnly(template);
  } catch {
    /* a directory the user cannot write: the identity record alone protects the overlay */
  }
  const identity = backingIdentity(template);
  const { format } = resolveFormat(identity.path, undefined);
  const templateSize = format === 'qcow2' ? Qcow2Disk.inspect(identity.path).size : identity.size;
  if (options.size < templateSize) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `a thin instance of ${options.size} bytes is smaller than its template (${templateSize} bytes)`, { path: template });
  }
  // The pipeline's temp file: fsynced once before its rename, no barriers while it is built.
  createQcow2(overlay, { size: options.size, clusterSize: options.clusterSize ?? DEFAULT_CLUSTER_SIZE, backingFile: identity.path, backingFormat: format, scratch: true });
  if (!recordFormat(overlay, 'qcow2')) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `cannot record the format of ${overlay}: the filesystem keeps no user extended attributes`, {
      path: overlay,
      hint: 'put the images directory on a filesystem with user xattrs (ext4, xfs, btrfs), or make a raw instance',
    });
  }
  recordBackingIdentity(overlay, identity);
}

/**
 * Lists the overlay (`temp` now, `final` after the rename: same inode) as a dependent of
 * `template`. `problem` says when that was not possible (e.g. a template directory the user
 * cannot write): the overlay is still refused if the template changes, but diskwright's writers
 * cannot refuse to change it. `undo` removes the entry again (the rename failed).
 */
export function registerThinInstance(template: string, final: string, temp: string): { problem?: string; undo: () => void } {
  try {
    const info = statSync(temp);
    const listed = join(realpathSync(dirname(final)), basename(final));
    registerDependent(template, listed, { dev: info.dev, ino: info.ino });
    return {
      undo: () => {
        try {
          unregisterDependent(template, listed);
        } catch {
          /* a stale entry is ignored later */
        }
      },
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { problem: `could not list ${final} as a dependent of ${template}${code ? ` (${code})` : ''}: diskwright will not refuse to change the template`, undo: () => undefined };
  }
}

/**
 * Prepares the release of a thin instance disk from its backing file's list of dependents: reads
 * the disk's record while it still exists and returns what to call once it is deleted (with no
 * live dependent left, the template's old mode comes back; a shared grown base nobody uses any
 * more is removed, src/instance/grown-base.ts). The entry is removed when the function is called;
 * its promise settles after the base's removal (never rejects). Disks without the record: a no-op.
 */
export function releaseThinInstance(overlay: string): () => Promise<void> {
  const nothing = (): Promise<void> => Promise.resolve();
  let recorded;
  try {
    recorded = recordedBackingIdentity(overlay);
  } catch {
    return nothing;
  }
  if (recorded === undefined) return nothing;
  let real = overlay;
  try {
    real = realpathSync(overlay);
  } catch {
    /* gone already */
  }
  const template = recorded.path;
  return async () => {
    try {
      unregisterDependent(template, real);
    } catch {
      /* the template's directory is not writable: the stale entry is ignored later */
    }
    if (isSharedBase(template)) await pruneSharedBase(template);
  };
}

/** Creates of this process building over a template (by real path) now (see {@link protectTemplate}). */
const building = new Map<string, number>();

/**
 * Makes the template read-only before a thin instance records its identity (best effort: a
 * template in a directory the user cannot write stays as it is, and the instance is then only
 * protected by its identity record). Listing the overlay later then changes nothing of the
 * template's inode — its ctime is part of the identity. Returns the release, to call once when the
 * create ends: `restore` (it failed, or made a standalone disk) gives the old mode back unless
 * something depends on the template or another create of this process still builds over it (a
 * fleet's sibling, whose recorded identity a chmod would break).
 */
export function protectTemplate(template: string): (restore: boolean) => void {
  let key = template;
  try {
    key = realpathSync(template);
  } catch {
    /* planning reports a missing template */
  }
  building.set(key, (building.get(key) ?? 0) + 1);
  try {
    makeReadOnly(template);
  } catch {
    /* see above */
  }
  let released = false;
  return (restore) => {
    if (released) return;
    released = true;
    const left = (building.get(key) ?? 1) - 1;
    if (left > 0) building.set(key, left);
    else building.delete(key);
    if (!restore || left > 0) return;
    try {
      restoreIfUnused(template);
    } catch {
      /* the mode file stays; the next destroy restores the mode */
    }
  };
}

/**
 * Where the identity of a template is kept that `e2fsck -fn` last found clean: a file in
 * diskwright's cache directory, keyed by the template's real path — not an xattr on the
 * template, whose writing would change the template's ctime and so the identity that every
 * overlay over it recorded.
 */
export function checkedRecordPath(template: string, env: NodeJS.ProcessEnv = process.env): string {
  let real = template;
  try {
    real = realpathSync(template);
  } catch {
    /* a missing template has no record anyway */
  }
  return join(cacheDir(env), 'checked', `${createHash('sha256').update(real).digest('hex').slice(0, 32)}.json`);
}

/** Largest checked record read back (it is one identity, ~400 bytes). */
const MAX_CHECKED_RECORD_BYTES = 4096;

/**
 * True when `template` is, by its identity (ctime included), the file a clean `e2fsck -fn` was
 * recorded for: the same file, unchanged since, needs no new check before the next thin instance
 * (the instance itself is always checked). A missing, damaged or other-shaped record: false.
 */
export function templateKnownClean(template: string, env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    const text = readFileSync(checkedRecordPath(template, env), 'utf8');
    if (text.length > MAX_CHECKED_RECORD_BYTES) return false;
    const recorded = JSON.parse(text) as BackingIdentity;
    // Only a version 2 record holds the ctime that makes "unchanged" sound.
    if (recorded?.version !== 2 || typeof recorded.ctimeNs !== 'string') return false;
    return identityChange(recorded, backingIdentity(template)) === undefined;
  } catch {
    return false;
  }
}

/** The template's identity now, to record after a clean check (taken before the check starts). */
export function templateIdentity(template: string): BackingIdentity | undefined {
  try {
    return backingIdentity(template);
  } catch {
    return undefined;
  }
}

/** Records that `template` (as `identity` says) was found clean; best effort (an unwritable cache: no record). */
export function recordTemplateClean(template: string, identity: BackingIdentity, env: NodeJS.ProcessEnv = process.env): void {
  try {
    const path = checkedRecordPath(template, env);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(identity)}\n`, { mode: 0o600 });
    renameSync(temp, path);
  } catch {
    /* no record: the next thin instance checks the template again */
  }
}
