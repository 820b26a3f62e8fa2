import { DiskwrightError } from '../errors.js';
import { RawFileDisk } from './raw.js';
import type { Disk, DiskFormat } from './types.js';

/** Options of {@link openImage}. */
export interface OpenImageOptions {
  /** Forces the format (`--format`); default: raw (the qcow2 work adds detection here). */
  readonly format?: DiskFormat;
  readonly readOnly: boolean;
}

/**
 * Opens an image file as a Disk. Every consumer opens images through here, so a new format
 * plugs in at one place. The caller closes the Disk.
 */
export function openImage(path: string, options: OpenImageOptions): Disk {
  const format = options.format ?? 'raw';
  if (format !== 'raw') {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${path}: the ${format} format is not supported in this build`, { path, hint: 'convert it to raw with `qemu-img convert -O raw`' });
  }
  return RawFileDisk.open(path, { readOnly: options.readOnly });
}
