/**
 * Thin instances (`instance create --format qcow2`): the instance disk is a qcow2 overlay whose
 * backing file is the template (raw, or a qcow2 one). Every later step (resize2fs, rendering, the checks) opens it
 * through the block layer and writes clusters into the overlay only; the template is only read.
 *
 * Protection of the template (docs/instance.md, "Thin instances"):
 * - the overlay records the template's identity (device, inode, size, mtime and a hash of its
 *   first 64 KiB) in an xattr; every open of its chain checks it (src/disk/backing-identity.ts);
 * - the template's directory lists the overlays depending on it; every diskwright writer refuses
 *   to change or replace it while one lives, and the template is made read-only meanwhile
 *   (src/disk/dependents.ts).
 */
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { backingIdentity, identityChange, readIdentityRecord, recordBackingIdentity, recordedBackingIdentity, writeIdentityRecord, type BackingIdentity } from '../disk/backing-identity.js';
import { registerDependent, unregisterDependent } from '../disk/dependents.js';
import { recordFormat } from '../disk/format-record.js';
import { createQcow2, DEFAULT_CLUSTER_SIZE } from '../disk/qcow2/create.js';
import { Qcow2Disk } from '../disk/qcow2/index.js';
import { resolveFormat } from '../disk/open.js';
import { DiskwrightError } from '../errors.js';
import { isSharedBase, pruneSharedBase } from './grown-base.js';

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

/**
 * The xattr on a template that records the identity it had when `e2fsck -fn` found it clean:
 * the same file with the same size, mtime and first 64 KiB need no new check before the next
 * thin instance (the instance itself is always checked).
 */
export const CHECKED_XATTR = 'user.diskwright.checked';

/** True when `template` is, by its identity, the file a clean `e2fsck -fn` was recorded for. */
export function templateKnownClean(template: string): boolean {
  try {
    const recorded = readIdentityRecord(template, CHECKED_XATTR);
    return recorded !== undefined && identityChange(recorded, backingIdentity(template)) === undefined;
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

/** Records that `template` (as `identity` says) was found clean; best effort (needs write access). */
export function recordTemplateClean(template: string, identity: BackingIdentity): void {
  writeIdentityRecord(template, CHECKED_XATTR, identity);
}
