import { DiskwrightError } from '../errors.js';

/**
 * A pure writer for the "newc" cpio format the Linux kernel unpacks as an initramfs
 * (linux/Documentation/driver-api/early-userspace/buffer-format.rst). Writing the archive ourselves
 * needs no root even for device nodes (/dev/console), and is deterministic: every mtime, uid and
 * gid is 0 and inode numbers follow entry order.
 */

/** One archive member. Paths are relative (`bin/busybox`), without a leading slash. */
export type CpioEntry =
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly type: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string }
  | { readonly type: 'char'; readonly path: string; readonly major: number; readonly minor: number; readonly mode?: number };

const MAGIC = '070701';
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';
/** newc stores sizes in 8 hex digits. */
const MAX_FIELD = 0xffffffff;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIELD) {
    throw new DiskwrightError('E_LIMIT', `cpio field value ${value} does not fit in 8 hex digits`);
  }
  return value.toString(16).padStart(8, '0');
}

function pad4(length: number): number {
  return (4 - (length % 4)) % 4;
}

function validatePath(path: string): void {
  if (path === '' || path.startsWith('/') || path.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `cpio member path \`${path}\` must be relative without empty, . or .. parts`);
  }
}

function header(ino: number, mode: number, nlink: number, size: number, nameSize: number, rdevMajor = 0, rdevMinor = 0): string {
  // Fields: ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check.
  return MAGIC + [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, nameSize, 0].map(hex8).join('');
}

/** Encodes `entries` (in the given order) followed by the trailer. */
export function encodeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const encoder = new TextEncoder();
  const push = (head: string, name: string, data: Uint8Array): void => {
    const nameBytes = encoder.encode(`${name}\0`);
    parts.push(encoder.encode(head), nameBytes, new Uint8Array(pad4(HEADER_SIZE + nameBytes.length)));
    parts.push(data, new Uint8Array(pad4(data.length)));
  };
  const seen = new Set<string>();
  let ino = 1;
  for (const entry of entries) {
    validatePath(entry.path);
    if (seen.has(entry.path)) throw new DiskwrightError('E_INVALID_ARGUMENT', `cpio member \`${entry.path}\` appears twice`);
    seen.add(entry.path);
    const nameSize = encoder.encode(entry.path).length + 1;
    let data: Uint8Array = new Uint8Array(0);
    let head: string;
    switch (entry.type) {
      case 'dir':
        head = header(ino, S_IFDIR | (entry.mode ?? 0o755), 2, 0, nameSize);
        break;
      case 'file':
        data = entry.data;
        head = header(ino, S_IFREG | (entry.mode ?? 0o644), 1, data.length, nameSize);
        break;
      case 'symlink':
        data = encoder.encode(entry.target);
        head = header(ino, S_IFLNK | 0o777, 1, data.length, nameSize);
        break;
      case 'char':
        head = header(ino, S_IFCHR | (entry.mode ?? 0o600), 1, 0, nameSize, entry.major, entry.minor);
        break;
    }
    push(head, entry.path, data);
    ino += 1;
  }
  push(header(0, 0, 1, 0, TRAILER.length + 1), TRAILER, new Uint8Array(0));
  const total = parts.reduce((sum, p) => sum + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
