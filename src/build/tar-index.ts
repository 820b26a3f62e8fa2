/**
 * Indexes an uncompressed tar archive (ustar, GNU and pax, as GNU tar, bsdtar and mmdebstrap write
 * them) without unpacking it: one entry per path with its owner, mode, nanosecond times, device
 * number, link target, xattrs and the offset of its data in the archive. Header blocks are decoded
 * by node-tar's `Header` (checksums, base-256 numbers, ustar prefixes); pax records are parsed here
 * on raw bytes because `SCHILY.xattr.*` values are binary (a file capability is not UTF-8).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Header } from 'tar';
import { DiskwrightError } from '../errors.js';

/** S_IFMT values (Linux <sys/stat.h>). */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** Limits on values read from an untrusted archive. */
export const MAX_TAR_ENTRIES = 4_000_000;
export const MAX_PAX_BYTES = 16 * 1024 * 1024;
export const MAX_PATH_BYTES = 4096;

/** One file of the archive as the filesystem will hold it. */
export interface TarEntry {
  /** Path below the root: no leading `/` or `./`, never `.` or `..` parts; `''` is the root. */
  readonly path: string;
  /** Type and permission bits (st_mode). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Linux device number of a device node (makedev encoding), else 0. */
  readonly rdev: number;
  /** Regular file: its length; symlink: the target's length. */
  readonly size: number;
  /** Same value on hard links of one file. */
  readonly ino: number;
  readonly nlink: number;
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  /** Symlink target. */
  readonly linkname?: string;
  /** Byte offset of a regular file's data in the archive. */
  readonly dataOffset: number;
  /** xattrs in the kernel's encoding (POSIX ACLs as system.posix_acl_*). */
  readonly xattrs: readonly (readonly [string, Uint8Array])[];
}

export interface TarIndex {
  readonly entries: readonly TarEntry[];
  readonly files: number;
  /** Bytes of regular-file data (each hard-linked file once). */
  readonly bytes: number;
}

interface MutableEntry {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  ino: number;
  nlink: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  linkname?: string;
  dataOffset: number;
  xattrs: [string, Uint8Array][];
}

function badArchive(archive: string, offset: number, message: string): DiskwrightError {
  return new DiskwrightError('E_BAD_SIGNATURE', `${archive}: ${message} (at byte ${offset})`, {
    path: archive,
    offset,
    hint: 'is it a tar archive (plain, .gz, .xz or .zst)? `tar tvf` it to check',
  });
}

/** Pax extended header records `LEN key=value\n`, values kept as raw bytes. */
export function parsePaxRecords(data: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let p = 0;
  while (p < data.length) {
    if (data[p] === 0) break;
    let q = p;
    while (q < data.length && data[q] !== 0x20) q++;
    const len = Number(Buffer.from(data.subarray(p, q)).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= q - p + 1 || p + len > data.length) throw new Error(`bad pax record length at ${p}`);
    const record = data.subarray(q + 1, p + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new Error(`pax record without = at ${p}`);
    out.set(Buffer.from(record.subarray(0, eq)).toString('utf8'), record.slice(eq + 1));
    p += len;
  }
  return out;
}

/** `1700000000.123456789` (pax time) → nanoseconds, exactly. */
export function paxTimeNs(text: string): bigint | undefined {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(text.trim());
  if (!m) return undefined;
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0') || '0');
  return m[1] ? -ns : ns;
}

const ACL_TAGS: Readonly<Record<string, number>> = { user: 0x01, u: 0x01, group: 0x04, g: 0x04, mask: 0x10, m: 0x10, other: 0x20, o: 0x20 };
const ACL_UNDEFINED_ID = 0xffff_ffff;

/**
 * POSIX ACL text as GNU tar stores it (`SCHILY.acl.access`: `user::rw-,user:1000:r--,group::r-x,
 * mask::r-x,other::r--`) → the kernel's `system.posix_acl_*` xattr value (version 2, entries of
 * u16 tag, u16 perm, u32 id, sorted by tag then id as the kernel requires).
 */
export function encodePosixAcl(text: string): Uint8Array {
  const entries: [number, number, number][] = [];
  for (const raw of text.split(/[,\n]/)) {
    const item = raw.replace(/#.*$/, '').trim();
    if (item === '') continue;
    const parts = item.split(':');
    if (parts.length < 2 || parts.length > 3) throw new Error(`bad ACL entry \`${item}\``);
    const [tagText, qualifier, perms] = parts.length === 3 ? parts : [parts[0], '', parts[1]];
    let tag = ACL_TAGS[tagText!];
    if (tag === undefined) throw new Error(`bad ACL tag \`${tagText}\``);
    let id = ACL_UNDEFINED_ID;
    if (qualifier !== '' && (tag === 0x01 || tag === 0x04)) {
      if (!/^[0-9]+$/.test(qualifier!)) throw new Error(`ACL entry \`${item}\` names a user or group; only numeric ids (tar --numeric-owner) can be kept`);
      id = Number(qualifier);
      tag = tag === 0x01 ? 0x02 : 0x08;
    }
    let perm = 0;
    for (const c of perms!) {
      if (c === 'r') perm |= 4;
      else if (c === 'w') perm |= 2;
      else if (c === 'x') perm |= 1;
      else if (c !== '-') throw new Error(`bad ACL permissions \`${perms}\``);
    }
    entries.push([tag, perm, id]);
  }
  entries.sort((a, b) => a[0] - b[0] || a[2] - b[2]);
  const out = Buffer.alloc(4 + entries.length * 8);
  out.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt16LE(tag, 4 + i * 8);
    out.writeUInt16LE(perm, 6 + i * 8);
    out.writeUInt32LE(id, 8 + i * 8);
  });
  return out;
}

/** Linux makedev() (glibc encoding, what st_rdev holds). */
export function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 0x1_0000_0000;
}

/** Normalises an archive path; throws for `..` escapes. */
export function normalizeTarPath(path: string, archive: string, offset: number): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw badArchive(archive, offset, `entry \`${path}\` has a \`..\` component that would escape the root`);
  const out = parts.join('/');
  if (Buffer.byteLength(out) > MAX_PATH_BYTES) throw badArchive(archive, offset, `entry path of ${Buffer.byteLength(out)} bytes is longer than ${MAX_PATH_BYTES}`);
  return out;
}

const TYPE_MODE: Readonly<Record<string, number>> = {
  File: S_IFREG,
  OldFile: S_IFREG,
  ContiguousFile: S_IFREG,
  Directory: S_IFDIR,
  GNUDumpDir: S_IFDIR,
  SymbolicLink: S_IFLNK,
  CharacterDevice: S_IFCHR,
  BlockDevice: S_IFBLK,
  FIFO: S_IFIFO,
};

const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8'));

/** Headers are read through a 4 MiB window: one syscall per window, not per 512-byte block. */
const WINDOW = 4 * 1024 * 1024;

class BlockReader {
  private buffer = Buffer.alloc(WINDOW);
  private start = 0;
  private end = 0;
  constructor(
    private readonly fd: number,
    private readonly archive: string,
  ) {}

  /** The `length` (≤ the window) bytes at `offset` (a view into the window: copy before keeping). */
  block(offset: number, length = 512): Buffer {
    if (offset < this.start || offset + length > this.end) {
      const n = readSync(this.fd, this.buffer, 0, WINDOW, offset);
      this.start = offset;
      this.end = offset + n;
      if (n < length) throw badArchive(this.archive, offset, 'the archive ends in the middle of an entry (truncated?)');
    }
    return this.buffer.subarray(offset - this.start, offset - this.start + length);
  }
}

/** Reads `length` bytes at `position` (throws on a short read: a truncated archive). */
function readExact(fd: number, length: number, position: number, archive: string): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw badArchive(archive, position + done, 'the archive ends in the middle of an entry (truncated?)');
    done += n;
  }
  return buffer;
}

/** Indexes `archive` (an uncompressed tar file). */
export function indexTar(archive: string): TarIndex {
  const fd = openSync(archive, 'r');
  try {
    const size = fstatSync(fd).size;
    const byPath = new Map<string, MutableEntry>();
    let nextIno = 2;
    let pax = new Map<string, Uint8Array>();
    let globalPax = new Map<string, Uint8Array>();
    let longPath: string | undefined;
    let longLink: string | undefined;
    let offset = 0;
    let count = 0;
    const reader = new BlockReader(fd, archive);
    const isZeroBlock = (b: Buffer): boolean => {
      for (let i = 0; i < 512; i++) if (b[i] !== 0) return false;
      return true;
    };
    while (offset + 512 <= size) {
      const block = reader.block(offset);
      if (isZeroBlock(block)) break;
      const header = new Header(block);
      if (!header.cksumValid) throw badArchive(archive, offset, 'a tar header has a bad checksum');
      const dataOffset = offset + 512;
      const dataSize = header.size ?? 0;
      if (!Number.isSafeInteger(dataSize) || dataSize < 0) throw badArchive(archive, offset, 'a tar header has a bad size');
      const next = dataOffset + Math.ceil(dataSize / 512) * 512;
      const type = header.type;
      const meta = (): Buffer => {
        if (dataSize > MAX_PAX_BYTES) throw badArchive(archive, offset, `an extended header of ${dataSize} bytes exceeds ${MAX_PAX_BYTES}`);
        return dataSize <= WINDOW ? Buffer.from(reader.block(dataOffset, dataSize)) : readExact(fd, dataSize, dataOffset, archive);
      };
      if (type === 'ExtendedHeader' || type === 'OldExtendedHeader') {
        try {
          pax = parsePaxRecords(meta());
        } catch (error) {
          throw badArchive(archive, offset, `a bad pax header: ${(error as Error).message}`);
        }
      } else if (type === 'GlobalExtendedHeader') {
        globalPax = new Map([...globalPax, ...parsePaxRecords(meta())]);
      } else if (type === 'NextFileHasLongPath' || type === 'OldGnuLongPath') {
        longPath = meta().toString('utf8').replace(/\0+$/, '');
      } else if (type === 'NextFileHasLongLinkpath') {
        longLink = meta().toString('utf8').replace(/\0+$/, '');
      } else {
        if (++count > MAX_TAR_ENTRIES) throw badArchive(archive, offset, `more than ${MAX_TAR_ENTRIES} entries`);
        const rec = globalPax.size === 0 ? pax : new Map([...globalPax, ...pax]);
        const rawPath = text(rec.get('path')) ?? longPath ?? header.path ?? '';
        const path = normalizeTarPath(rawPath, archive, offset);
        const linkpath = text(rec.get('linkpath')) ?? longLink ?? header.linkpath ?? '';
        const num = (key: string, fallback: number | undefined): number => {
          const value = text(rec.get(key));
          return value !== undefined && /^[0-9]+$/.test(value) ? Number(value) : fallback ?? 0;
        };
        const mtimeNs = paxTimeNs(text(rec.get('mtime')) ?? '') ?? BigInt(Math.floor((header.mtime?.getTime() ?? 0) / 1000)) * 1_000_000_000n;
        const timeOf = (key: 'atime' | 'ctime'): bigint => paxTimeNs(text(rec.get(key)) ?? '') ?? (header[key] ? BigInt(Math.floor(header[key]!.getTime() / 1000)) * 1_000_000_000n : mtimeNs);
        const xattrs: [string, Uint8Array][] = [];
        // GNU tar --acls --xattrs-include='*' stores an ACL twice: as text and as the binary xattr.
        const hasBinaryAcl = (name: string): boolean => rec.has(`SCHILY.xattr.${name}`);
        for (const [key, value] of rec) {
          if (key.startsWith('SCHILY.xattr.')) xattrs.push([key.slice('SCHILY.xattr.'.length), value]);
          else if (key.startsWith('LIBARCHIVE.xattr.')) xattrs.push([decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(Buffer.from(value).toString('latin1'), 'base64')]);
          else if (key === 'RHT.security.selinux') xattrs.push(['security.selinux', value]);
          else if ((key === 'SCHILY.acl.access' && !hasBinaryAcl('system.posix_acl_access')) || (key === 'SCHILY.acl.default' && !hasBinaryAcl('system.posix_acl_default'))) {
            try {
              const acl = encodePosixAcl(Buffer.from(value).toString('utf8'));
              xattrs.push([key === 'SCHILY.acl.access' ? 'system.posix_acl_access' : 'system.posix_acl_default', acl]);
            } catch (error) {
              throw badArchive(archive, offset, `entry \`${rawPath}\`: ${(error as Error).message}`);
            }
          }
        }
        const entrySize = num('size', dataSize);
        const perm = (header.mode ?? 0) & 0o7777;
        const base = {
          uid: num('uid', header.uid),
          gid: num('gid', header.gid),
          atimeNs: timeOf('atime'),
          mtimeNs,
          ctimeNs: timeOf('ctime'),
          xattrs,
        };
        if (type === 'Link') {
          const target = byPath.get(normalizeTarPath(linkpath, archive, offset));
          if (!target || (target.mode & S_IFMT) === S_IFDIR) throw badArchive(archive, offset, `hard link \`${rawPath}\` points to \`${linkpath}\`, which is not an earlier file of the archive`);
          // A hard link is the same inode: it shares the target's metadata and data.
          target.nlink++;
          byPath.set(path, target);
        } else {
          const ifmt = TYPE_MODE[type];
          if (ifmt === undefined) throw badArchive(archive, offset, `entry \`${rawPath}\` has an unsupported type (${type})`);
          const old = byPath.get(path);
          if (old && old.nlink > 1) old.nlink--;
          const isReg = ifmt === S_IFREG;
          const entry: MutableEntry = {
            path,
            mode: ifmt | perm,
            ...base,
            rdev: ifmt === S_IFCHR || ifmt === S_IFBLK ? makedev(num('SCHILY.devmajor', header.devmaj), num('SCHILY.devminor', header.devmin)) : 0,
            size: isReg ? entrySize : ifmt === S_IFLNK ? Buffer.byteLength(linkpath) : 0,
            ino: nextIno++,
            nlink: 1,
            dataOffset: isReg ? dataOffset : 0,
            ...(ifmt === S_IFLNK ? { linkname: linkpath } : {}),
          };
          if (isReg && dataOffset + entrySize > size) throw badArchive(archive, offset, `entry \`${rawPath}\` runs past the end of the archive (truncated?)`);
          byPath.set(path, entry);
        }
        pax = new Map();
        longPath = undefined;
        longLink = undefined;
      }
      offset = next;
    }
    // Parent directories the archive leaves implicit, as tar extraction creates them (0755, root).
    for (const path of [...byPath.keys()]) {
      const parts = path.split('/');
      for (let i = parts.length - 1; i >= 0; i--) {
        const parent = parts.slice(0, i).join('/');
        if (byPath.has(parent)) {
          if (i > 0) continue;
          break;
        }
        byPath.set(parent, { path: parent, mode: S_IFDIR | 0o755, uid: 0, gid: 0, rdev: 0, size: 0, ino: nextIno++, nlink: 1, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, dataOffset: 0, xattrs: [] });
      }
    }
    for (const [path, entry] of byPath) {
      if (path !== '' && (byPath.get(path.split('/').slice(0, -1).join('/'))!.mode & S_IFMT) !== S_IFDIR) {
        throw badArchive(archive, 0, `entry \`${path}\` is inside \`${path.split('/').slice(0, -1).join('/')}\`, which is not a directory`);
      }
      void entry;
    }
    const entries = [...byPath.entries()].map(([path, e]) => (e.path === path ? e : { ...e, path }));
    const seen = new Set<number>();
    let files = 0;
    let bytes = 0;
    for (const e of entries) {
      if ((e.mode & S_IFMT) !== S_IFREG || seen.has(e.ino)) continue;
      seen.add(e.ino);
      files++;
      bytes += e.size;
    }
    return { entries, files, bytes };
  } finally {
    closeSync(fd);
  }
}
