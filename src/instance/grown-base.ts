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
import { chmodSync, closeSync, fchmodSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BACKING_XATTR, identityChange, readIdentityRecord, type BackingIdentity } from '../disk/backing-identity.js';
import { liveDependents, registerDependent, restoreIfUnused, unregisterDependent, dependentsDir } from '../disk/dependents.js';
import { findHolders } from '../disk/holders.js';
import { fsyncDirOf } from '../io/fsync-dir.js';
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
 * {@link publishSharedBase} with the shared lock already held: taken on `grown` before the link, so
 * the base (the same inode) is never unlocked and without dependents while this create still has
 * to build over it — a concurrent {@link pruneStaleBases} sees it as 'building'. Returns undefined
 * when another create published one first (the caller keeps its own file), else the shared lock on
 * the published base (`lock` undefined if it could not be taken, as {@link holdSharedBase}).
 */
export async function publishAndHoldSharedBase(grown: string, base: string, template: string): Promise<{ lock: ImageLock | undefined } | undefined> {
  const early = await holdSharedBase(grown);
  try {
    if (publishSharedBase(grown, base, template) !== 'published') return undefined;
    return { lock: await holdSharedBase(base) };
  } finally {
    early?.release();
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
  fsyncDirOf(base);
  const info = statSync(base);
  registerDependent(template, base, { dev: info.dev, ino: info.ino });
  return 'published';
}

/**
 * A shared layer is read-only (0444: its identity holds its ctime), and the write lock that
 * pruning takes needs a descriptor open for writing — which its non-root owner cannot get, so the
 * layer (and its template's read-only mode) stayed forever. The owner gets write permission back
 * first, only while no other process has the file open (a create building over it holds it) and
 * no instance depends on it: the layer is removed right after, so its new ctime matters to nobody.
 */
function ownerWritableForPrune(base: string): void {
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return;
  try {
    const info = statSync(base);
    if (info.uid !== uid || (info.mode & 0o200) !== 0) return;
    if (findHolders(base, { byInode: true }).length > 0) return;
    chmodSync(base, (info.mode & 0o7777) | 0o200);
  } catch {
    /* gone, or not ours to change: the lock below fails and nothing is removed */
  }
}

/**
 * Removes the shared base when no instance depends on it any more and nobody reads it (an
 * exclusive lock, refused while a create builds over it): it leaves its template's dependents,
 * and the template gets its mode back when it was the last. Returns whether it was removed.
 */
export async function pruneSharedBase(base: string): Promise<boolean> {
  if (!isSharedBase(base) || liveDependents(base).length > 0) return false;
  ownerWritableForPrune(base);
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

/** What `instance list --bases` shows of one shared grown layer. */
export interface SharedBaseInfo {
  readonly path: string;
  /** The template it was grown from (its recorded backing file), if recorded. */
  readonly template: string | undefined;
  /** Virtual size in bytes (the instances' disk size), if readable. */
  readonly virtualSize: number | undefined;
  /** Bytes the layer allocates on the host. */
  readonly allocated: number;
  /** Live thin instances over it. */
  readonly instances: readonly string[];
  /**
   * 'in-use': instances depend on it; 'building': no instance yet, but another process holds it
   * (a create building over it, or a reader); 'stale': neither — left by a killed or failed create
   * (or its instances were deleted by hand), it only keeps its template read-only.
   */
  readonly state: 'in-use' | 'building' | 'stale';
}

/** The shared grown layers in `imagesDir`, sorted by path (none: an empty list). */
export function listSharedBases(imagesDir: string): SharedBaseInfo[] {
  const dir = join(imagesDir, BASES_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: SharedBaseInfo[] = [];
  for (const name of names.sort()) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info?.isFile() || !isSharedBase(path)) continue;
    let template: string | undefined;
    let virtualSize: number | undefined;
    try {
      template = readIdentityRecord(path, BACKING_XATTR)?.path;
      virtualSize = Qcow2Disk.inspect(path).size;
    } catch {
      /* shown without them */
    }
    const instances = liveDependents(path);
    // A lock held by another process on this file under any name (the creator locks it as its temp file).
    const held = instances.length === 0 && findHolders(path, { byInode: true }).some((h) => h.lock !== undefined);
    out.push({ path, template, virtualSize, allocated: info.blocks * 512, instances, state: instances.length > 0 ? 'in-use' : held ? 'building' : 'stale' });
  }
  return out;
}

/**
 * Removes the stale shared layers of `imagesDir` (see {@link SharedBaseInfo.state}): each one's
 * leftover registry is dropped (it gets its mode back), then {@link pruneSharedBase} removes it
 * under an exclusive lock after checking once more that no instance depends on it — a create that
 * takes it meanwhile keeps it. Returns the paths removed.
 */
export async function pruneStaleBases(imagesDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const base of listSharedBases(imagesDir)) {
    if (base.state !== 'stale') continue;
    // A killed create may have listed itself (the base then read-only) and died before its rename.
    restoreIfUnused(base.path);
    if (await pruneSharedBase(base.path)) removed.push(base.path);
  }
  return removed;
}
