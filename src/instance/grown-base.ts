/**
 * The shared grown layer of thin instances (docs/instance.md, "The shared grown layer"). Every
 * thin instance of one template at one size starts from the same bytes: the template after
 * `resize2fs` to that size. The first instance that finds its template clean keeps that state as
 * `IMAGES_DIR/.diskwright-bases/TEMPLATE-SIZE-KEY.qcow2` (a qcow2 over the raw template holding
 * only what resize2fs changed); its own overlay and every later one are made over it, so later
 * instances run no resize2fs. The chain is instance → base → template, all in qcow2 headers with
 * their backing formats (QEMU and libvirt never probe).
 *
 * It is protected like a template: it carries its template's identity (checked at every open of
 * the chain), each instance carries the base's identity, the base is listed as a dependent of the
 * template and each instance as a dependent of the base (diskwright's writers refuse to change
 * either; both are read-only meanwhile), and nothing writes it after it was published (by a
 * link(2) of a complete, fsynced file). `instance destroy` removes the base with the last
 * instance that uses it, under an exclusive lock that a create using it (shared lock) or any
 * reader blocks — never while another instance depends on it.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, fchmodSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BACKING_XATTR, identityChange, readIdentityRecord, type BackingIdentity } from '../disk/backing-identity.js';
import { liveDependents, registerDependent, unregisterDependent, dependentsDir } from '../disk/dependents.js';
import { lockImage, type ImageLock } from '../disk/lock.js';
import { Qcow2Disk } from '../disk/qcow2/index.js';

/** The directory in the images directory that holds the shared grown layers. */
export const BASES_DIR = '.diskwright-bases';

/** Where the shared grown layer of `template` (with `identity`) at `size` bytes lives. */
export function sharedBasePath(imagesDir: string, template: string, identity: BackingIdentity, size: number): string {
  // The template's identity is part of the name: a changed template never meets an old base.
  const key = createHash('sha256').update(JSON.stringify({ identity, size })).digest('hex').slice(0, 16);
  return join(imagesDir, BASES_DIR, `${basename(template)}-${size}-${key}.qcow2`);
}

/** True for a path diskwright keeps shared grown layers at (what `instance destroy` may prune). */
export function isSharedBase(path: string): boolean {
  return basename(dirname(path)) === BASES_DIR && path.endsWith('.qcow2');
}

/**
 * True when `base` exists, is a qcow2 of `size` bytes and records `identity` (the template as it
 * is now) as its backing file's: a base of a changed template is never used.
 */
export function usableSharedBase(base: string, identity: BackingIdentity, size: number): boolean {
  try {
    if (!statSync(base, { throwIfNoEntry: false })?.isFile()) return false;
    const recorded = readIdentityRecord(base, BACKING_XATTR);
    if (recorded === undefined || identityChange(recorded, identity) !== undefined) return false;
    return Qcow2Disk.inspect(base).size === size;
  } catch {
    return false;
  }
}

/** A shared lock on the base while an instance is built over it (pruning needs an exclusive one). */
export async function holdSharedBase(base: string): Promise<ImageLock | undefined> {
  try {
    return await lockImage(base, { access: 'read' });
  } catch {
    return undefined;
  }
}

/**
 * Publishes `grown` (a complete thin overlay of the template: overlay + resize2fs, nothing else)
 * as the shared base: fsync, then link(2) to `base` — which fails if another create published one
 * first ('exists': the caller keeps its own file). The base is then listed as a dependent of the
 * template. Returns 'published' or 'exists'; throws on other errors (the caller then shares nothing).
 */
export function publishSharedBase(grown: string, base: string, template: string): 'published' | 'exists' {
  const fd = openSync(grown, 'r');
  const mode = fstatSync(fd).mode & 0o7777;
  try {
    // Read-only for good before anything records its identity: listing the first instance then
    // needs no chmod, which would change the ctime that instance recorded (src/disk/backing-identity.ts).
    fchmodSync(fd, mode & ~0o222);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    mkdirSync(dirname(base), { recursive: true, mode: 0o755 });
    linkSync(grown, base);
  } catch (error) {
    // Not published: `grown` stays this instance's own disk, written by the next steps.
    chmodSync(grown, mode);
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw error;
  }
  syncDirectory(dirname(base));
  const info = statSync(base);
  registerDependent(template, base, { dev: info.dev, ino: info.ino });
  return 'published';
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes the shared base when no instance depends on it any more and nobody reads it (an
 * exclusive lock, refused while a create builds over it): it leaves its template's dependents,
 * and the template gets its mode back when it was the last. Returns whether it was removed.
 */
export async function pruneSharedBase(base: string): Promise<boolean> {
  if (!isSharedBase(base) || liveDependents(base).length > 0) return false;
  let lock: ImageLock;
  try {
    lock = await lockImage(base, { access: 'write' });
  } catch {
    return false;
  }
  try {
    if (liveDependents(base).length > 0) return false;
    const template = readIdentityRecord(base, BACKING_XATTR)?.path;
    rmSync(base, { force: true });
    rmSync(dependentsDir(base), { recursive: true, force: true });
    try {
      rmdirSync(dirname(base));
    } catch {
      /* other bases are still there */
    }
    if (template !== undefined) {
      try {
        unregisterDependent(template, base);
      } catch {
        /* the template's directory is not writable: the stale entry is ignored later */
      }
    }
    return true;
  } catch {
    return false;
  } finally {
    lock.release();
  }
}
