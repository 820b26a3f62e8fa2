import { DiskwrightError } from '../errors.js';
import { isWasmAbort } from './module.js';

/** libext2fs error-table codes (lib/ext2fs/ext2_err.et: base 2133571328, entries by position). */
const EXT2_ET_BASE = 2133571328;
const EXT2_ET_BLOCK_ALLOC_FAIL = 72;
const EXT2_ET_INODE_ALLOC_FAIL = 73;

/**
 * Turns an error from the `ext2fs` package into a one-line DiskwrightError about `path`.
 * `ioError`: what the image's Disk threw during the call (Ext2fsDiskAdapter.ioError): libext2fs
 * turns it into EIO or an errcode of its own, so a failure that is not one of the codes below is
 * reported as that cause (e.g. "qcow2: data cluster … is past the end of the file").
 */
export function mapExtError(error: unknown, operation: string, path: string, ioError?: unknown): DiskwrightError {
  if (error instanceof DiskwrightError) return error;
  if (isWasmAbort(error)) {
    return new DiskwrightError('E_WASM', `${operation} ${path}: the filesystem editor aborted (${(error as Error).message.split('\n')[0]})`, {
      path,
      cause: error,
      hint: 'nothing was written to the image; split the work into smaller sessions',
    });
  }
  const code = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
  const errno = typeof error === 'object' && error !== null && 'errno' in error ? Number((error as { errno: unknown }).errno) : 0;
  const ext2Code = errno - EXT2_ET_BASE;
  if (ext2Code === EXT2_ET_BLOCK_ALLOC_FAIL || ext2Code === EXT2_ET_INODE_ALLOC_FAIL) {
    const what = ext2Code === EXT2_ET_INODE_ALLOC_FAIL ? 'inodes' : 'blocks';
    return new DiskwrightError('E_EXTFS', `${operation} ${path}: the filesystem has no free ${what} left`, {
      path,
      cause: error,
      hint: what === 'inodes' ? 'make the filesystem again with more inodes (a smaller bytes-per-inode ratio)' : 'grow the image and filesystem first (`diskwright resize`)',
    });
  }
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
      if (ioError instanceof DiskwrightError) return ioError;
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      return new DiskwrightError('E_EXTFS', `${operation} ${path} failed: ${message}`, { path, cause: error });
    }
  }
}
