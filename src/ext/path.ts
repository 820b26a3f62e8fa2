import { InvalidArgumentError } from '../errors.js';

/** Longest in-image path accepted (Linux PATH_MAX). */
export const MAX_IMAGE_PATH_BYTES = 4096;
/** Longest directory-entry name ext2/3/4 can store. */
export const MAX_NAME_BYTES = 255;

/**
 * Normalizes a path inside the image to an absolute `/a/b` form: resolves `.` and `..`, drops
 * duplicate and trailing slashes. A relative path is taken from the root. A `..` that would climb
 * above the root, a NUL byte or an over-long name is an `E_INVALID_ARGUMENT` error.
 */
export function normalizeImagePath(path: string): string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidArgumentError('Expected an in-image path, got an empty string', { actual: path });
  }
  if (path.includes('\0')) {
    throw new InvalidArgumentError(`In-image path ${JSON.stringify(path)} contains a NUL byte`, { path });
  }
  if (Buffer.byteLength(path) > MAX_IMAGE_PATH_BYTES) {
    throw new InvalidArgumentError(`In-image path is longer than ${MAX_IMAGE_PATH_BYTES} bytes`, { path: path.slice(0, 80) });
  }
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) {
        throw new InvalidArgumentError(`In-image path ${JSON.stringify(path)} escapes the filesystem root with \`..\``, {
          path,
          hint: 'paths inside the image cannot climb above /',
        });
      }
      parts.pop();
      continue;
    }
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) {
      throw new InvalidArgumentError(`In-image name ${JSON.stringify(part.slice(0, 40))}… is longer than ${MAX_NAME_BYTES} bytes`, { path });
    }
    parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** Parent directory of a normalized path (`/` for `/` itself). */
export function parentPath(normalized: string): string {
  const index = normalized.lastIndexOf('/');
  return index <= 0 ? '/' : normalized.slice(0, index);
}

/** Last component of a normalized path (empty for `/`). */
export function baseName(normalized: string): string {
  return normalized.slice(normalized.lastIndexOf('/') + 1);
}

/** Joins a normalized directory path and one entry name. */
export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** True when `inner` is `outer` or lies below it (both normalized). */
export function isWithin(inner: string, outer: string): boolean {
  return inner === outer || outer === '/' || inner.startsWith(`${outer}/`);
}
