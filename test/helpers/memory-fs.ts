import { mkdir, readFile, readdir, lstat as hostLstat, readlink as hostReadlink, symlink as hostSymlink, writeFile as hostWriteFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { DiskwrightError } from '../../src/errors.js';
import type { FileKind, FileStat, FilesystemSession, TreeCopySummary, WriteOptions } from '../../src/ext/types.js';

/**
 * An in-memory {@link FilesystemSession}: the model the template operations are unit-tested
 * against (no image, no WASM). Follows the contract: absolute normalized paths, `..` cannot escape
 * (`E_INVALID_ARGUMENT`), missing paths are `E_NOT_FOUND`, symlinks followed in the middle of a
 * path and by stat/readFile/writeFile, not by lstat/rm/rename/readlink.
 */
interface Node {
  kind: FileKind;
  mode: number;
  uid: number;
  gid: number;
  ino: number;
  data: Uint8Array;
  target: string;
  children: Map<string, Node>;
  atime: Date;
  mtime: Date;
  ctime: Date;
}

/** A tree spec: path → text (file), `{ symlink }`, `{ dir: true }` or a file with mode/owner. */
export type TreeSpec = Record<
  string,
  string | { symlink: string } | { dir: true; mode?: number } | { content: string | Uint8Array; mode?: number; uid?: number; gid?: number }
>;

const MAX_HOPS = 40;

function notFound(path: string): DiskwrightError {
  return new DiskwrightError('E_NOT_FOUND', `${path}: no such file or directory in the image`, { path });
}

export class MemoryFilesystem implements FilesystemSession {
  private nextIno = 2;
  private readonly root: Node;
  /** Count of mutating calls (idempotency tests assert a second run makes none). */
  mutations = 0;

  constructor(spec: TreeSpec = {}) {
    this.root = this.node('directory', 0o755);
    for (const [path, entry] of Object.entries(spec)) {
      if (typeof entry === 'string') this.seedFile(path, new TextEncoder().encode(entry), 0o644, 0, 0);
      else if ('symlink' in entry) {
        this.mkdirSync(posix.dirname(path));
        this.parentOf(path).children.set(posix.basename(path), { ...this.node('symlink', 0o777), target: entry.symlink });
      } else if ('dir' in entry) this.mkdirSync(path, entry.mode);
      else {
        const data = typeof entry.content === 'string' ? new TextEncoder().encode(entry.content) : entry.content;
        this.seedFile(path, data, entry.mode ?? 0o644, entry.uid ?? 0, entry.gid ?? 0);
      }
    }
    this.mutations = 0;
  }

  private node(kind: FileKind, mode: number): Node {
    const now = new Date();
    return { kind, mode, uid: 0, gid: 0, ino: this.nextIno++, data: new Uint8Array(), target: '', children: new Map(), atime: now, mtime: now, ctime: now };
  }

  private seedFile(path: string, data: Uint8Array, mode: number, uid: number, gid: number): void {
    this.mkdirSync(posix.dirname(path));
    const node = this.node('file', mode);
    Object.assign(node, { data, uid, gid });
    this.parentOf(path).children.set(posix.basename(path), node);
  }

  private mkdirSync(path: string, mode = 0o755): void {
    let dir = this.root;
    for (const part of this.parts(path)) {
      let child = dir.children.get(part);
      if (!child) {
        child = this.node('directory', mode);
        dir.children.set(part, child);
      }
      dir = child;
    }
  }

  /** Normalized components; `..` above the root is rejected like the real layer does. */
  private parts(path: string): string[] {
    const out: string[] = [];
    for (const part of path.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (out.length === 0) throw new DiskwrightError('E_INVALID_ARGUMENT', `path ${path} escapes the image root`, { path });
        out.pop();
      } else out.push(part);
    }
    return out;
  }

  private normalize(path: string): string {
    return `/${this.parts(path).join('/')}`;
  }

  /** Walks a path following symlinks (the last one only when `followLast`). */
  private walk(path: string, followLast: boolean): { node: Node; path: string } | undefined {
    let pending = this.parts(path);
    const stack: Node[] = [this.root];
    const names: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === '..') {
        if (stack.length > 1) {
          stack.pop();
          names.pop();
        }
        continue;
      }
      const dir = stack[stack.length - 1]!;
      if (dir.kind !== 'directory') return undefined;
      const child = dir.children.get(name);
      if (!child) return undefined;
      if (child.kind === 'symlink' && (pending.length > 0 || followLast)) {
        if (++hops > MAX_HOPS) throw new DiskwrightError('E_LOOP', `too many symlinks in ${path}`, { path });
        if (child.target.startsWith('/')) {
          stack.splice(1);
          names.splice(0);
        }
        pending = [...child.target.split('/').filter((p) => p !== '' && p !== '.'), ...pending];
        continue;
      }
      stack.push(child);
      names.push(name);
    }
    return { node: stack[stack.length - 1]!, path: `/${names.join('/')}` };
  }

  private get(path: string, followLast = true): Node {
    const found = this.walk(path, followLast);
    if (!found) throw notFound(path);
    return found.node;
  }

  private parentOf(path: string): Node {
    const parent = this.get(posix.dirname(this.normalize(path)));
    if (parent.kind !== 'directory') throw new DiskwrightError('E_EXTFS', `${posix.dirname(path)} is not a directory`, { path });
    return parent;
  }

  private statOf(path: string, node: Node): FileStat {
    const base: FileStat = {
      path,
      name: posix.basename(path) || '/',
      kind: node.kind,
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      size: node.kind === 'symlink' ? node.target.length : node.kind === 'directory' ? 4096 : node.data.length,
      nlink: 1,
      ino: node.ino,
      atime: node.atime,
      mtime: node.mtime,
      ctime: node.ctime,
    };
    return node.kind === 'symlink' ? { ...base, linkTarget: node.target } : base;
  }

  async stat(path: string): Promise<FileStat> {
    return this.statOf(this.normalize(path), this.get(path));
  }

  async lstat(path: string): Promise<FileStat> {
    return this.statOf(this.normalize(path), this.get(path, false));
  }

  async exists(path: string): Promise<boolean> {
    return this.walk(path, true) !== undefined;
  }

  async readdir(path: string): Promise<FileStat[]> {
    const dir = this.get(path);
    if (dir.kind !== 'directory') throw new DiskwrightError('E_EXTFS', `${path} is not a directory`, { path });
    return [...dir.children].map(([name, node]) => this.statOf(posix.join(this.normalize(path), name), node));
  }

  async readFile(path: string): Promise<Uint8Array> {
    const node = this.get(path);
    if (node.kind !== 'file') throw new DiskwrightError('E_EXTFS', `${path} is not a regular file`, { path });
    return node.data.slice();
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.readFile(path));
  }

  async writeFile(path: string, data: Uint8Array | string, options: WriteOptions = {}): Promise<void> {
    this.mutations++;
    if (options.parents) this.mkdirSync(posix.dirname(this.normalize(path)));
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data.slice();
    const existing = this.walk(path, true);
    if (existing) {
      if (existing.node.kind !== 'file') throw new DiskwrightError('E_EXTFS', `${path} is not a regular file`, { path });
      existing.node.data = bytes;
      if (options.mode !== undefined) existing.node.mode = options.mode;
      if (options.uid !== undefined) existing.node.uid = options.uid;
      if (options.gid !== undefined) existing.node.gid = options.gid;
      return;
    }
    const link = this.walk(path, false);
    if (link) throw new DiskwrightError('E_EXTFS', `${path} is a dangling symlink`, { path });
    const node = this.node('file', options.mode ?? 0o644);
    Object.assign(node, { data: bytes, uid: options.uid ?? 0, gid: options.gid ?? 0 });
    this.parentOf(path).children.set(posix.basename(this.normalize(path)), node);
  }

  async mkdir(path: string, options: { parents?: boolean; mode?: number; uid?: number; gid?: number } = {}): Promise<void> {
    this.mutations++;
    const existing = this.walk(path, true);
    if (existing) {
      if (options.parents && existing.node.kind === 'directory') return;
      throw new DiskwrightError('E_EXISTS', `${path} already exists`, { path });
    }
    if (options.parents) this.mkdirSync(posix.dirname(this.normalize(path)));
    const node = this.node('directory', options.mode ?? 0o755);
    Object.assign(node, { uid: options.uid ?? 0, gid: options.gid ?? 0 });
    this.parentOf(path).children.set(posix.basename(this.normalize(path)), node);
  }

  async rm(path: string, options: { recursive?: boolean; force?: boolean } = {}): Promise<void> {
    const found = this.walk(path, false);
    if (!found) {
      if (options.force) return;
      throw notFound(path);
    }
    if (found.node.kind === 'directory' && found.node.children.size > 0 && !options.recursive) {
      throw new DiskwrightError('E_EXTFS', `${path} is a non-empty directory`, { path });
    }
    this.mutations++;
    this.parentOf(path).children.delete(posix.basename(this.normalize(path)));
  }

  async symlink(target: string, path: string, options: { uid?: number; gid?: number } = {}): Promise<void> {
    if (this.walk(path, false)) throw new DiskwrightError('E_EXISTS', `${path} already exists`, { path });
    this.mutations++;
    const node = this.node('symlink', 0o777);
    Object.assign(node, { target, uid: options.uid ?? 0, gid: options.gid ?? 0 });
    this.parentOf(path).children.set(posix.basename(this.normalize(path)), node);
  }

  async readlink(path: string): Promise<string> {
    const node = this.get(path, false);
    if (node.kind !== 'symlink') throw new DiskwrightError('E_EXTFS', `${path} is not a symlink`, { path });
    return node.target;
  }

  async chmod(path: string, mode: number): Promise<void> {
    this.mutations++;
    this.get(path).mode = mode;
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    this.mutations++;
    Object.assign(this.get(path), { uid, gid });
  }

  async rename(from: string, to: string): Promise<void> {
    const node = this.get(from, false);
    this.mutations++;
    this.parentOf(to).children.set(posix.basename(this.normalize(to)), node);
    this.parentOf(from).children.delete(posix.basename(this.normalize(from)));
  }

  async utimes(path: string, atime: Date, mtime: Date): Promise<void> {
    this.mutations++;
    Object.assign(this.get(path), { atime, mtime });
  }

  async putFile(hostPath: string, path: string, options: WriteOptions = {}): Promise<void> {
    await this.writeFile(path, await readFile(hostPath), options);
  }

  async copyIn(hostDir: string, path: string, options: { uid?: number; gid?: number } = {}): Promise<TreeCopySummary> {
    const summary = { files: 0, directories: 0, symlinks: 0, bytes: 0, skipped: [] as string[] };
    await this.mkdir(path, { parents: true });
    for (const name of await readdir(hostDir)) {
      const host = join(hostDir, name);
      const inImage = posix.join(path, name);
      const info = await hostLstat(host);
      if (info.isDirectory()) {
        const sub = await this.copyIn(host, inImage, options);
        summary.directories += sub.directories + 1;
        summary.files += sub.files;
        summary.symlinks += sub.symlinks;
        summary.bytes += sub.bytes;
        summary.skipped.push(...sub.skipped);
      } else if (info.isSymbolicLink()) {
        await this.symlink(await hostReadlink(host), inImage, options);
        summary.symlinks += 1;
      } else if (info.isFile()) {
        const data = await readFile(host);
        await this.writeFile(inImage, data, { mode: info.mode & 0o7777, ...options });
        summary.files += 1;
        summary.bytes += data.length;
      } else summary.skipped.push(`${inImage}: special file`);
    }
    return summary;
  }

  async copyOut(path: string, hostPath: string, options: { overwrite?: boolean } = {}): Promise<TreeCopySummary> {
    const exists = await hostLstat(hostPath).then(() => true, () => false);
    if (exists && !options.overwrite) throw new DiskwrightError('E_EXISTS', `${hostPath} already exists`, { path: hostPath });
    const summary = { files: 0, directories: 0, symlinks: 0, bytes: 0, skipped: [] as string[] };
    const node = this.get(path, false);
    if (node.kind === 'symlink') {
      await hostSymlink(node.target, hostPath);
      summary.symlinks += 1;
    } else if (node.kind === 'file') {
      await hostWriteFile(hostPath, node.data, { mode: node.mode });
      summary.files += 1;
      summary.bytes += node.data.length;
    } else if (node.kind === 'directory') {
      await mkdir(hostPath, { recursive: true });
      summary.directories += 1;
      for (const name of node.children.keys()) {
        const sub = await this.copyOut(posix.join(path, name), join(hostPath, name), options);
        summary.files += sub.files;
        summary.directories += sub.directories;
        summary.symlinks += sub.symlinks;
        summary.bytes += sub.bytes;
        summary.skipped.push(...sub.skipped);
      }
    } else summary.skipped.push(`${path}: special file`);
    return summary;
  }

  /** Every path in the tree with a short description (for whole-tree assertions). */
  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    const visit = (dir: Node, prefix: string): void => {
      for (const [name, node] of [...dir.children].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const path = `${prefix}/${name}`;
        if (node.kind === 'directory') {
          out[path] = `dir ${node.mode.toString(8)}`;
          visit(node, path);
        } else if (node.kind === 'symlink') out[path] = `-> ${node.target}`;
        else out[path] = `file ${node.mode.toString(8)} ${node.uid}:${node.gid} ${new TextDecoder().decode(node.data)}`;
      }
    };
    visit(this.root, '');
    return out;
  }
}

/** Shorthand: a memory filesystem from a tree spec. */
export function memoryFs(spec: TreeSpec = {}): MemoryFilesystem {
  return new MemoryFilesystem(spec);
}

