// Tree factory for the e2fs worker's tree hook (contract: src/e2fs/tree.ts), loaded inside the
// worker thread, hence plain JS. Two trees feed `mke2fs -d /virtual/root`:
//  - TarTree: an uncompressed tar archive indexed by tar-index.ts in the main thread; file data is
//    read at its offset in the archive (nothing is unpacked).
//  - HostDirTree: a host directory, with owners replaced (--owner) — a user-owned tree becomes a
//    root-owned filesystem, like genext2fs -U.
// Both count files and bytes read in a SharedArrayBuffer the main thread polls for progress.
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const S_IFMT = 0o170000;
const DT_BY_IFMT = new Map([[0o010000, 1], [0o020000, 2], [0o040000, 4], [0o060000, 6], [0o100000, 8], [0o120000, 10], [0o140000, 12]]);

/** Progress counters: [files started, bytes read] in a BigInt64Array over shared memory. */
function counters(shared) {
  const view = shared ? new BigInt64Array(shared) : new BigInt64Array(2);
  return {
    file() { Atomics.add(view, 0, 1n); },
    bytes(n) { Atomics.add(view, 1, BigInt(n)); },
  };
}

/** Owner mapping (fill.ts OwnerOption): fixed uid/gid, else the maps, else unchanged. */
function applyOwner(stat, owner) {
  if (!owner) return stat;
  const map = (id, fixed, pairs) => {
    if (fixed !== undefined) return fixed;
    const hit = pairs?.find(([from]) => from === id);
    return hit ? hit[1] : id;
  };
  return { ...stat, uid: map(stat.uid, owner.uid, owner.uidMap), gid: map(stat.gid, owner.gid, owner.gidMap) };
}

export class TarTree {
  /** args: { archive, entries: TarEntry[], owner?, progress? } */
  constructor(args, context) {
    // Not registered with context.trackFd: the worker closes tracked fds before it calls
    // close(), and a double close could hit a reused descriptor. A killed run leaks this one
    // read-only fd until the process exits.
    void context;
    this.fd = openSync(args.archive, 'r');
    this.owner = args.owner;
    this.count = counters(args.progress);
    this.byPath = new Map();
    this.children = new Map();
    for (const entry of args.entries) {
      this.byPath.set(entry.path, entry);
      if ((entry.mode & S_IFMT) === 0o040000 && !this.children.has(entry.path)) this.children.set(entry.path, []);
    }
    for (const entry of args.entries) {
      if (entry.path === '') continue;
      const slash = entry.path.lastIndexOf('/');
      const parent = slash < 0 ? '' : entry.path.slice(0, slash);
      this.children.get(parent).push({ name: entry.path.slice(slash + 1), type: DT_BY_IFMT.get(entry.mode & S_IFMT) ?? 0 });
    }
  }

  lstat(rel) {
    const e = this.byPath.get(rel);
    if (!e) return null;
    return applyOwner({ mode: e.mode, uid: e.uid, gid: e.gid, rdev: e.rdev, size: e.size, nlink: e.nlink, ino: e.ino, atimeNs: e.atimeNs, mtimeNs: e.mtimeNs, ctimeNs: e.ctimeNs }, this.owner);
  }

  readdir(rel) {
    const list = this.children.get(rel);
    if (!list) throw new Error(`not a directory: ${rel}`);
    return list;
  }

  readlink(rel) {
    const e = this.byPath.get(rel);
    if (!e || e.linkname === undefined) throw new Error(`not a symlink: ${rel}`);
    return e.linkname;
  }

  read(rel, buffer, position) {
    const e = this.byPath.get(rel);
    if (!e) throw new Error(`no such file: ${rel}`);
    if (position >= e.size) return 0;
    if (position === 0) this.count.file();
    const n = readSync(this.fd, buffer, 0, Math.min(buffer.length, e.size - position), e.dataOffset + position);
    this.count.bytes(n);
    return n;
  }

  listxattr(rel) {
    return (this.byPath.get(rel)?.xattrs ?? []).map(([name]) => name);
  }

  getxattr(rel, name) {
    const found = (this.byPath.get(rel)?.xattrs ?? []).find(([n]) => n === name);
    return found ? found[1] : null;
  }

  close() {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

function dtype(entry) {
  if (entry.isDirectory()) return 4;
  if (entry.isSymbolicLink()) return 10;
  if (entry.isCharacterDevice()) return 2;
  if (entry.isBlockDevice()) return 6;
  if (entry.isFIFO()) return 1;
  if (entry.isSocket()) return 12;
  return 8;
}

export class HostDirTree {
  /** args: { dir, owner?, progress? } */
  constructor(args) {
    this.dir = args.dir;
    this.owner = args.owner;
    this.count = counters(args.progress);
    this.xattr = require('@napi-rs/xattr');
    /** One open fd at a time: mke2fs reads a file front to back before the next. */
    this.open = undefined;
  }

  at(rel) {
    if (rel.split('/').some((part) => part === '..' || part === '.')) throw new Error(`bad path ${rel}`);
    return rel === '' ? this.dir : join(this.dir, rel);
  }

  lstat(rel) {
    let st;
    try {
      st = lstatSync(this.at(rel), { bigint: true });
    } catch (error) {
      if (error.code === 'ENOENT') return null;
      throw error;
    }
    return applyOwner({ mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), rdev: Number(st.rdev), size: Number(st.size),
      nlink: Number(st.nlink), ino: Number(st.ino), atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }, this.owner);
  }

  readdir(rel) {
    return readdirSync(this.at(rel), { withFileTypes: true }).map((entry) => ({ name: entry.name, type: dtype(entry) }));
  }

  readlink(rel) {
    return readlinkSync(this.at(rel));
  }

  read(rel, buffer, position) {
    if (this.open?.rel !== rel) {
      this.closeOpen();
      this.open = { rel, fd: openSync(this.at(rel), 'r') };
      this.count.file();
    }
    const n = readSync(this.open.fd, buffer, 0, buffer.length, position);
    this.count.bytes(n);
    return n;
  }

  listxattr(rel) {
    return this.xattr.listAttributesSync(this.at(rel));
  }

  getxattr(rel, name) {
    return this.xattr.getAttributeSync(this.at(rel), name);
  }

  closeOpen() {
    if (this.open) closeSync(this.open.fd);
    this.open = undefined;
  }

  close() {
    this.closeOpen();
  }
}

/** args: { root, kind: 'tar' | 'dir', … } — one virtual root per run. */
export function createTrees(args, context) {
  const tree = args.kind === 'tar' ? new TarTree(args, context) : new HostDirTree(args);
  return { [args.root]: tree };
}
