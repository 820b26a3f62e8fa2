import { closeSync, openSync } from 'node:fs';
import { DiskwrightError } from '../errors.js';
import { headBytes, recordedFormatOf } from './format-record.js';
import { hostError } from './host-error.js';
import { hasQcow2Magic, openQcow2Chain, Qcow2Disk } from './qcow2/index.js';
import { RawFileDisk } from './raw.js';
import type { Disk, DiskFormat } from './types.js';

/** Options of {@link openImage}. */
export interface OpenImageOptions {
  /**
   * Forces the format (`--format`). `qcow2` also trusts the image's backing chain: the user (or
   * diskwright's own record) said what the file is, so the backing files its headers name are opened.
   */
  readonly format?: DiskFormat;
  readonly readOnly: boolean;
  /**
   * A new private file that the caller fsyncs once and renames into place when complete: a qcow2
   * skips its fsync barriers while it is built (Qcow2OpenOptions.scratch).
   */
  readonly scratch?: boolean;
}

/** How {@link openImage} decided the format (for `info` and messages). */
export type FormatSource = 'forced' | 'recorded' | 'probed';

/** A format decided by {@link resolveFormat}: what the file is, and on whose word. */
export interface ResolvedFormat {
  readonly format: DiskFormat;
  readonly source: FormatSource;
}

/**
 * The probing rule (docs/qcow2.md): a forced format wins; then the format diskwright recorded on
 * the file when it made it (the `user.diskwright.format` xattr); then the qcow2 magic. A probed
 * qcow2 is read, but its backing file is never followed (E_UNTRUSTED_BACKING) — a raw disk whose
 * guest wrote a qcow2 header naming a host file must not make diskwright read that file.
 */
export function resolveFormat(path: string, forced: DiskFormat | undefined): ResolvedFormat {
  if (forced) return { format: forced, source: 'forced' };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw hostError(error, path, 'open');
  }
  try {
    const recorded = recordedFormatOf(fd);
    if (recorded) return { format: recorded, source: 'recorded' };
    return { format: hasQcow2Magic(headBytes(fd, 4)) ? 'qcow2' : 'raw', source: 'probed' };
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens an image file as a Disk. Every consumer opens images through here, so a new format
 * plugs in at one place. The caller closes the Disk.
 */
export function openImage(path: string, options: OpenImageOptions): Disk {
  return openResolved(path, resolveFormat(path, options.format), options);
}

/**
 * Opens `path` as the format an earlier {@link resolveFormat} decided (the e2fs worker gets the
 * parent's decision as data). Only a forced or recorded qcow2 follows its backing chain (each
 * layer read-only); a probed one that names a backing file is E_UNTRUSTED_BACKING, unopened.
 */
export function openResolved(path: string, resolved: ResolvedFormat, options: { readonly readOnly: boolean; readonly scratch?: boolean }): Disk {
  const { format, source } = resolved;
  if (format === 'raw') return RawFileDisk.open(path, { readOnly: options.readOnly });
  if (format !== 'qcow2') {
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `${path}: the ${String(format)} format is not supported`, { path, hint: 'use --format raw or --format qcow2' });
  }
  const scratch = options.scratch === true && !options.readOnly ? { scratch: true } : {};
  if (source === 'probed') return Qcow2Disk.open(path, { readOnly: options.readOnly, ...scratch });
  return openQcow2Chain(path, { readOnly: options.readOnly, openRaw: (p) => RawFileDisk.open(p, { readOnly: true }), ...scratch });
}
