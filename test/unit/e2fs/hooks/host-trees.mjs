// Test-only tree factory for the worker's tree hook: a Tree (src/e2fs/tree.ts) that serves a
// host directory under a virtual root, so `mke2fs -d /virtual/root` can be compared with host
// `mke2fs -d DIR`. Counts calls so tests can see the tree (not the host path) was used.
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const xattr = createRequire(import.meta.url)('@napi-rs/xattr');

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
  constructor(dir) {
    this.dir = dir;
    this.calls = { lstat: 0, readdir: 0, readlink: 0, read: 0, listxattr: 0, getxattr: 0 };
  }

  at(rel) {
    if (rel.split('/').some((part) => part === '..' || part === '.')) throw new Error(`bad rel ${rel}`);
    return rel === '' ? this.dir : join(this.dir, rel);
  }

  lstat(rel) {
    this.calls.lstat++;
    let st;
    try {
      st = lstatSync(this.at(rel), { bigint: true });
    } catch (error) {
      if (error.code === 'ENOENT') return null;
      throw error;
    }
    return { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), rdev: Number(st.rdev), size: Number(st.size),
      nlink: Number(st.nlink), ino: Number(st.ino), atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
  }

  readdir(rel) {
    this.calls.readdir++;
    return readdirSync(this.at(rel), { withFileTypes: true }).map((entry) => ({ name: entry.name, type: dtype(entry) }));
  }

  readlink(rel) {
    this.calls.readlink++;
    return readlinkSync(this.at(rel));
  }

  read(rel, buffer, position) {
    this.calls.read++;
    const fd = openSync(this.at(rel), 'r');
    try {
      return readSync(fd, buffer, 0, buffer.length, position);
    } finally {
      closeSync(fd);
    }
  }

  listxattr(rel) {
    this.calls.listxattr++;
    return xattr.listAttributesSync(this.at(rel));
  }

  getxattr(rel, name) {
    this.calls.getxattr++;
    return xattr.getAttributeSync(this.at(rel), name);
  }
}

/** Last trees created (per worker), for afterRun reports. */
let last = {};

/** args: { trees: [{ root: '/virtual/root', dir: '/host/dir' }] }. */
export function createTrees(args) {
  last = {};
  for (const spec of args.trees) last[spec.root] = new HostDirTree(spec.dir);
  return last;
}

/** Reports how often each tree was called (the factory's afterRun runs with disks only, so none). */
export function createDisks() {
  return {};
}

export function afterRun() {
  return Object.fromEntries(Object.entries(last).map(([root, tree]) => [root, tree.calls]));
}
