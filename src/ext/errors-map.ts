import { DiskwrightError } from '../errors.js';
import { isWasmAbort } from './module.js';

/** Turns an error from the `ext2fs` package into a one-line DiskwrightError about `path`. */
export function mapExtError(error: unknown, operation: string, path: string): DiskwrightError {
  if (error instanceof DiskwrightError) return error;
  if (isWasmAbort(error)) {
    return new DiskwrightError('E_WASM', `${operation} ${path}: the WASM libext2fs aborted (${(error as Error).message.split('\n')[0]})`, {
      path,
      cause: error,
      hint: 'nothing was written to the image; split the work into smaller sessions',
    });
  }
  const code = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
  switch (code) {
    case 'ENOENT':
      return new DiskwrightError('E_NOT_FOUND', `${path}: no such file or directory in the image`, { path, cause: error });
    case 'EEXIST':
      return new DiskwrightError('E_EXISTS', `${path}: already exists in the image`, { path, cause: error });
    case 'ENOTDIR':
      return new DiskwrightError('E_INVALID_ARGUMENT', `${path}: a path component is not a directory`, { path, cause: error });
    case 'EISDIR':
      return new DiskwrightError('E_INVALID_ARGUMENT', `${path}: is a directory`, { path, cause: error });
    case 'ENOTEMPTY':
      return new DiskwrightError('E_INVALID_ARGUMENT', `${path}: directory is not empty`, { path, cause: error, hint: 'remove it recursively (-r)' });
    case 'ENOSPC':
      return new DiskwrightError('E_EXTFS', `${operation} ${path}: no space left in the filesystem`, {
        path,
        cause: error,
        hint: 'grow the image and filesystem first (`diskwright resize`)',
      });
    case 'ENAMETOOLONG':
      return new DiskwrightError('E_INVALID_ARGUMENT', `${path}: name too long`, { path, cause: error });
    default: {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      return new DiskwrightError('E_EXTFS', `${operation} ${path} failed in libext2fs: ${message}`, { path, cause: error });
    }
  }
}
