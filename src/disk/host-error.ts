import { DiskwrightError } from '../errors.js';

/** A host I/O failure as a one-line E_IO error naming the file, the operation and the errno. */
export function hostError(error: unknown, path: string, operation: string, offset?: number): DiskwrightError {
  if (error instanceof DiskwrightError) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOENT') return new DiskwrightError('E_NOT_FOUND', `${path} does not exist`, { path, cause: error, hint: 'check the image path' });
  const where = offset === undefined ? '' : ` at offset ${offset}`;
  return new DiskwrightError('E_IO', `${operation} of ${path}${where} failed${errno ? ` (${errno})` : ''}`, {
    path,
    ...(offset === undefined ? {} : { offset }),
    cause: error,
    hint: errno === 'ENOSPC' ? 'free some space on the filesystem holding the image' : errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS' ? 'diskwright needs write access to the image and its directory' : undefined,
  });
}

/** The errno of a host error, also when wrapped in a DiskwrightError's cause. */
export function errnoOf(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && !code.startsWith('E_')) return code;
  }
  return undefined;
}
