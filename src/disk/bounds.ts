import { DiskwrightError } from '../errors.js';

/** Throws E_OUT_OF_RANGE unless `[position, position + length)` lies inside `[0, size)`. */
export function checkRange(path: string, size: number, position: number, length: number): void {
  if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0 || position + length > size) {
    throw new DiskwrightError('E_OUT_OF_RANGE', `access at ${position}+${length} is outside ${path} (${size} bytes)`, { path, offset: position, expected: size });
  }
}
