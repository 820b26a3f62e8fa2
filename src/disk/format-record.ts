import { closeSync, openSync, readSync } from 'node:fs';
import type { DiskFormat } from './types.js';
import { nativeExtensions } from './native.js';

/**
 * diskwright's own record of the format of an image it made: the extended attribute
 * `user.diskwright.format` on the file. A guest cannot set host xattrs, so a raw disk diskwright
 * made is never reinterpreted as qcow2 even if its guest wrote a qcow2 header into sector 0.
 * Copies made by other tools drop the record; such files fall back to the probing rule.
 */
export const FORMAT_XATTR = 'user.diskwright.format';

export interface Attrs {
  getAttrSync(fd: number, name: string): Buffer | null;
  setAttrSync(fd: number, name: string, value: string): void;
}
let attrs: Attrs | null | undefined;
function native(): Attrs | undefined {
  if (attrs === undefined) {
    try {
      attrs = nativeExtensions<Attrs>();
    } catch {
      attrs = null;
    }
  }
  return attrs ?? undefined;
}

/**
 * The host's user-xattr calls on open descriptors (fs-native-extensions), or undefined where the
 * addon is missing; other diskwright records on image files use it too (src/disk/backing-identity.ts).
 */
export function fileAttributes(): Attrs | undefined {
  return native();
}

/** Records `format` on `path`; false where the host filesystem keeps no user xattrs. */
export function recordFormat(path: string, format: DiskFormat): boolean {
  const api = native();
  if (!api) return false;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false; // best effort: without the record the probing rule still applies
  }
  try {
    api.setAttrSync(fd, FORMAT_XATTR, format);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** The format diskwright recorded on the open file, if any. */
export function recordedFormatOf(fd: number): DiskFormat | undefined {
  const api = native();
  if (!api) return undefined;
  try {
    const value = api.getAttrSync(fd, FORMAT_XATTR)?.toString('utf8');
    return value === 'raw' || value === 'qcow2' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The first bytes of an open file, for the magic probe. */
export function headBytes(fd: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const n = readSync(fd, out, 0, length, 0);
  return out.subarray(0, n);
}
