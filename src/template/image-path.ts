import { posix } from 'node:path';
import { DiskwrightError, LimitError, isDiskwrightError } from '../errors.js';
import type { FileStat, FilesystemSession } from '../ext/types.js';

/** Largest configuration file an operation reads and rewrites (they are a few KiB). */
export const MAX_EDIT_BYTES = 1024 * 1024;

/** Symlinks followed while resolving one in-image path (Linux uses 40 too: ELOOP). */
export const MAX_SYMLINK_HOPS = 40;

/** `lstat`, or undefined when the path does not exist. */
export async function lstatIfExists(fs: FilesystemSession, path: string): Promise<FileStat | undefined> {
  try {
    return await fs.lstat(path);
  } catch (error) {
    if (isDiskwrightError(error, 'E_NOT_FOUND')) return undefined;
    throw error;
  }
}

/**
 * Resolves every symlink in an absolute in-image path the way the guest kernel would: absolute
 * targets start at the image root, `..` at the root stays at the root, at most
 * {@link MAX_SYMLINK_HOPS} links. Returns the final path and its stat, or undefined when a
 * component does not exist (a dangling link). Independent of how the session treats links, and
 * never leaves the image.
 */
export async function resolveInImage(
  fs: FilesystemSession,
  path: string,
): Promise<{ path: string; stat: FileStat } | undefined> {
  // Fast path: one lookup when the last component is not a link (the session resolves links in
  // the middle of a path the same way, inside the image).
  const direct = await lstatIfExists(fs, path);
  if (!direct) return undefined;
  if (direct.kind !== 'symlink') return { path: `/${splitPath(path).join('/')}`, stat: direct };
  let pending = splitPath(path);
  let current = '/';
  let hops = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '..') {
      current = posix.dirname(current);
      continue;
    }
    const candidate = posix.join(current, name);
    const stat = await lstatIfExists(fs, candidate);
    if (!stat) return undefined;
    if (stat.kind === 'symlink') {
      hops += 1;
      if (hops > MAX_SYMLINK_HOPS) {
        throw new DiskwrightError('E_LOOP', `too many symlinks resolving ${path} in the image`, {
          path,
          expected: MAX_SYMLINK_HOPS,
        });
      }
      const target = stat.linkTarget ?? (await fs.readlink(candidate));
      if (target.startsWith('/')) current = '/';
      pending = [...splitPath(target), ...pending];
      continue;
    }
    if (pending.length > 0 && stat.kind !== 'directory') return undefined;
    current = candidate;
  }
  return { path: current, stat: await fs.lstat(current) };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/** The text of a regular file (after following links), or undefined when absent or not a file. */
export async function readTextFile(
  fs: FilesystemSession,
  path: string,
): Promise<{ path: string; stat: FileStat; text: string } | undefined> {
  const resolved = await resolveInImage(fs, path);
  if (!resolved || resolved.stat.kind !== 'file') return undefined;
  if (resolved.stat.size > MAX_EDIT_BYTES) {
    throw new LimitError(`${resolved.path} in the image is ${resolved.stat.size} bytes, more than the ${MAX_EDIT_BYTES} a configuration file may have`, {
      path: resolved.path,
      actual: resolved.stat.size,
      expected: MAX_EDIT_BYTES,
      hint: 'skip the operation that edits it (--skip) or fix the file',
    });
  }
  return { ...resolved, text: await fs.readText(resolved.path) };
}

/** Replaces a file's content, keeping its mode and owner. */
export async function replaceText(fs: FilesystemSession, path: string, stat: FileStat, text: string): Promise<void> {
  await fs.writeFile(path, text, { mode: stat.mode, uid: stat.uid, gid: stat.gid });
}

/** Entries of a directory (after following links), or [] when it does not exist. */
export async function listDirectory(fs: FilesystemSession, path: string): Promise<FileStat[]> {
  const resolved = await resolveInImage(fs, path);
  if (!resolved || resolved.stat.kind !== 'directory') return [];
  const entries = await fs.readdir(resolved.path);
  return entries
    .filter((entry) => entry.name !== '.' && entry.name !== '..')
    .map((entry) => ({ ...entry, path: posix.join(resolved.path, entry.name) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
