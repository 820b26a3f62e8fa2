/**
 * The identity of a qcow2 overlay's backing file, recorded by diskwright when it made the overlay
 * (a thin instance over its template) and checked whenever the overlay's chain is opened. An
 * overlay stores only the clusters that differ from its backing file: read over a backing file
 * that changed since, it shows a filesystem that never existed. So a changed backing file makes
 * the overlay refused (E_BACKING_CHANGED), never silently read (docs/qcow2.md, "Thin instances").
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { DiskwrightError } from '../errors.js';
import { fileAttributes } from './format-record.js';
import { hostError } from './host-error.js';

/** The extended attribute on the overlay that holds its backing file's identity (JSON). */
export const BACKING_XATTR = 'user.diskwright.backing';

/**
 * Bytes at the start of the backing file whose hash is the content fingerprint: for an ext
 * template they hold the superblock (UUID, last write and mount times, free counts) and, for
 * templates up to a few hundred GiB, the group descriptors.
 */
export const FINGERPRINT_BYTES = 64 * 1024;

/** Largest identity record diskwright reads back (it writes ~300 bytes). */
const MAX_RECORD_BYTES = 4096;

/**
 * Who the backing file was when the overlay was made: file identity, a content fingerprint and
 * the inode's change time. Version 1 records (before the ctime) are still read and checked
 * without it.
 */
export interface BackingIdentity {
  readonly version: 1 | 2;
  /** The backing file's real path. */
  readonly path: string;
  readonly dev: string;
  readonly ino: string;
  readonly size: number;
  /** Modification time in nanoseconds since 1970 (decimal string: exact). */
  readonly mtimeNs: string;
  /** sha256 of the first {@link FINGERPRINT_BYTES} bytes, hex. */
  readonly fingerprint: string;
  /**
   * Inode change time in nanoseconds (version 2). The kernel sets it on every write, truncate,
   * chmod, chown, link and xattr change, and to "now" when a tool puts the mtime back (utimensat):
   * no user-level program can restore it. So an edit anywhere in the file — also deep inside it,
   * past the fingerprint, with the mtime restored to the nanosecond — changes it. diskwright
   * itself changes nothing of a backing file's inode after it recorded the identity (the template
   * is made read-only first; the template check is recorded in the cache directory, not on it).
   */
  readonly ctimeNs?: string;
}

/** Reads the identity of `path` as it is now (one open, one fstat, one 64 KiB read); version 2. */
export function backingIdentity(path: string): BackingIdentity {
  let real: string;
  let fd: number;
  try {
    real = realpathSync(path);
    fd = openSync(real, 'r');
  } catch (error) {
    throw hostError(error, path, 'open');
  }
  try {
    const info = fstatSync(fd, { bigint: true });
    const head = Buffer.alloc(Number(info.size < BigInt(FINGERPRINT_BYTES) ? info.size : BigInt(FINGERPRINT_BYTES)));
    for (let done = 0; done < head.length; ) {
      const n = readSync(fd, head, done, head.length - done, done);
      if (n === 0) break;
      done += n;
    }
    return {
      version: 2,
      path: real,
      dev: String(info.dev),
      ino: String(info.ino),
      size: Number(info.size),
      mtimeNs: String(info.mtimeNs),
      fingerprint: createHash('sha256').update(head).digest('hex'),
      ctimeNs: String(info.ctimeNs),
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * Records `identity` on the overlay file. Throws E_UNSUPPORTED_FEATURE where the host filesystem
 * keeps no user xattrs: without the record a changed template could not be told.
 */
export function recordBackingIdentity(overlay: string, identity: BackingIdentity): void {
  if (!writeIdentityRecord(overlay, BACKING_XATTR, identity)) {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `cannot record the template's identity on ${overlay}: the filesystem keeps no user extended attributes`, {
      path: overlay,
      hint: 'put the images directory on a filesystem with user xattrs (ext4, xfs, btrfs), or make a raw or --standalone instance',
    });
  }
}

/** Writes an identity as the xattr `name` of `path`; false where that is not possible. */
export function writeIdentityRecord(path: string, name: string, identity: BackingIdentity): boolean {
  const api = fileAttributes();
  if (!api) return false;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    api.setAttrSync(fd, name, JSON.stringify(identity));
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** The identity recorded on `overlay`, or undefined when diskwright recorded none. */
export function recordedBackingIdentity(overlay: string): BackingIdentity | undefined {
  return readIdentityRecord(overlay, BACKING_XATTR);
}

/**
 * The identity held in the xattr `name` of `path`; undefined when there is none. A record that
 * is there but unreadable is E_BACKING_CHANGED (nothing can be concluded from it).
 */
export function readIdentityRecord(path: string, name: string): BackingIdentity | undefined {
  const api = fileAttributes();
  if (!api) return undefined;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  let raw: Buffer | null;
  try {
    raw = api.getAttrSync(fd, name);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
  if (raw === null) return undefined;
  if (raw.length > MAX_RECORD_BYTES) throw badRecord(path, name, `is ${raw.length} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw badRecord(path, name, 'is not JSON');
  }
  const v = value as Partial<BackingIdentity> | null;
  const strings = [v?.path, v?.dev, v?.ino, v?.mtimeNs, v?.fingerprint];
  const shape = v?.version === 1 || (v?.version === 2 && typeof v.ctimeNs === 'string');
  if (!shape || strings.some((s) => typeof s !== 'string') || typeof v?.size !== 'number') throw badRecord(path, name, 'has an unknown shape');
  return v as BackingIdentity;
}

function badRecord(path: string, name: string, why: string): DiskwrightError {
  return new DiskwrightError('E_BACKING_CHANGED', `${path}: diskwright's record ${name} ${why}`, {
    path,
    hint: 'diskwright cannot tell whether the template changed; destroy the instance and create it again',
  });
}

/** What differs between two identities, in words; undefined when none. */
export function identityChange(recorded: BackingIdentity, now: BackingIdentity): string | undefined {
  if (recorded.path !== now.path) return `it now resolves to ${now.path}, not ${recorded.path}`;
  if (recorded.dev !== now.dev || recorded.ino !== now.ino) return 'it was replaced by another file';
  if (recorded.size !== now.size) return `its size changed from ${recorded.size} to ${now.size} bytes`;
  if (recorded.mtimeNs !== now.mtimeNs) return `it was modified at ${new Date(Number(BigInt(now.mtimeNs) / 1000000n)).toISOString()}`;
  if (recorded.fingerprint !== now.fingerprint) return 'its first 64 KiB (the ext superblock) differ';
  // A version 1 record has no ctime: only what it holds can be compared.
  if (recorded.ctimeNs !== undefined && recorded.ctimeNs !== now.ctimeNs) {
    return `its inode changed at ${new Date(Number(BigInt(now.ctimeNs ?? '0') / 1000000n)).toISOString()} (a write, a restored modification time, a chmod, chown or link)`;
  }
  return undefined;
}

/**
 * Refuses (E_BACKING_CHANGED) when `overlay` carries diskwright's record of its backing file
 * and the file at `backingPath` is no longer that file. Overlays without a record (made by other
 * tools) pass: nothing is known about them.
 */
export function verifyBackingIdentity(overlay: string, backingPath: string): void {
  const recorded = recordedBackingIdentity(overlay);
  if (recorded === undefined) return;
  let now: BackingIdentity;
  try {
    now = backingIdentity(backingPath);
  } catch (error) {
    throw new DiskwrightError('E_BACKING_CHANGED', `${overlay}: its template ${backingPath} cannot be opened`, {
      path: overlay,
      cause: error,
      hint: `restore the template at ${recorded.path}, or destroy the instance`,
    });
  }
  const change = identityChange(recorded, now);
  if (change === undefined) return;
  throw new DiskwrightError('E_BACKING_CHANGED', `${overlay}: its template ${backingPath} changed since the overlay was made (${change}); refusing to read the overlay over it`, {
    path: overlay,
    hint: 'the overlay only holds what differs from the template it was made over: restore that template, or destroy the instance and create it again',
  });
}
