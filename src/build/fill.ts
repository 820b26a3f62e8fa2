/**
 * Sources for `mkfs --from`: a host directory or a tar archive (plain, gzip, xz, zstd), served to
 * the WASM mke2fs through the worker's tree hook (trees.mjs), so owners, modes, nanosecond times,
 * device nodes, fifos, hard links and xattrs reach the filesystem with no root and no unpacking.
 * A compressed archive is decompressed once into a temp file (tar data must be readable at an
 * offset); a plain one is read in place.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { tempPathBeside } from '../io/atomic.js';
import type { HookFactory } from '../e2fs/pool.js';
import { indexTar, type TarIndex } from './tar-index.js';
import { countTree, type TreeTotals } from '../io/tree-totals.js';

/**
 * Owner mapping for copied files: `uid`/`gid` replace every owner (`--owner root` = 0:0, like
 * genext2fs -U); `uidMap`/`gidMap` (`--owner-map FILE`) translate listed ids and keep the rest.
 */
export interface OwnerOption {
  readonly uid?: number;
  readonly gid?: number;
  readonly uidMap?: readonly (readonly [number, number])[];
  readonly gidMap?: readonly (readonly [number, number])[];
}

/**
 * Parses an owner map file: lines `uid FROM TO` or `gid FROM TO` (e.g. `uid 1000 0` makes the
 * building user's files root's), `#` comments and blank lines allowed.
 */
export function parseOwnerMap(text: string, file = 'owner map'): OwnerOption {
  const uidMap: [number, number][] = [];
  const gidMap: [number, number][] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const m = /^(uid|gid)\s+([0-9]{1,10})\s+([0-9]{1,10})$/.exec(line);
    if (!m || Number(m[2]) > 0xffff_fffe || Number(m[3]) > 0xffff_fffe) {
      throw new InvalidArgumentError(`${file} line ${i + 1}: expected \`uid FROM TO\` or \`gid FROM TO\` with numeric ids, got \`${line}\``);
    }
    (m[1] === 'uid' ? uidMap : gidMap).push([Number(m[2]), Number(m[3])]);
  });
  return { uidMap, gidMap };
}

/** Files and bytes copied so far by a fill (totals known for archives). */
export interface FillProgress {
  readonly files: number;
  readonly bytes: number;
  readonly totalFiles?: number;
  readonly totalBytes?: number;
}

export type ArchiveCompression = 'none' | 'gzip' | 'xz' | 'zstd';

/** Parses `--owner root`, `--owner 0:0`, `--owner 1000:100`. */
export function parseOwner(text: string): OwnerOption {
  if (text === 'root') return { uid: 0, gid: 0 };
  const m = /^([0-9]{1,10}):([0-9]{1,10})$/.exec(text);
  if (!m || Number(m[1]) > 0xffff_fffe || Number(m[2]) > 0xffff_fffe) throw new InvalidArgumentError(`Expected --owner to be root or UID:GID (numbers), got \`${text}\``);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** Compression by magic number (gzip 1f8b, xz fd377a585a00, zstd 28b52ffd). */
export function detectCompression(head: Uint8Array): ArchiveCompression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00) return 'xz';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** fzstd's streaming decoder as a Node transform (loaded only when an archive needs it). */
async function zstdTransform(): Promise<Transform> {
  const { Decompress } = await import('fzstd');
  let push: ((chunk: Uint8Array) => void) | undefined;
  const decoder = new Decompress((chunk) => push?.(chunk));
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      push = (c) => this.push(Buffer.from(c));
      try {
        decoder.push(chunk);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done: TransformCallback) {
      push = (c) => this.push(Buffer.from(c));
      try {
        decoder.push(new Uint8Array(0), true);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
}

/** Decompresses `archive` into `target`. */
async function decompress(archive: string, target: string, kind: Exclude<ArchiveCompression, 'none'>, signal?: AbortSignal): Promise<void> {
  const out = createWriteStream(target, { flags: 'wx', mode: 0o600 });
  const opts = signal ? { signal } : {};
  try {
    if (kind === 'gzip') await pipeline(createReadStream(archive), createGunzip(), out, opts);
    else if (kind === 'zstd') await pipeline(createReadStream(archive), await zstdTransform(), out, opts);
    else {
      // xz-decompress is CommonJS (a WASM build of xz-embedded): default import, then the class.
      const { XzReadableStream } = (await import('xz-decompress')).default;
      const web = Readable.toWeb(createReadStream(archive)) as unknown as ReadableStream<Uint8Array>;
      await pipeline(Readable.fromWeb(new XzReadableStream(web) as unknown as import('node:stream/web').ReadableStream<Uint8Array>), out, opts);
    }
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new DiskwrightError('E_BAD_SIGNATURE', `cannot decompress ${archive} (${kind}): ${(error as Error).message}`, { path: archive, cause: error, hint: 'the archive is damaged or truncated' });
  }
}

/** A prepared source: what mke2fs -d reads, how far it got, and the cleanup. */
export interface PreparedFill {
  /** The virtual root to pass to mke2fs -d. */
  readonly root: string;
  readonly treeFactory: HookFactory;
  readonly kind: 'tar' | 'dir';
  readonly totals?: { readonly files: number; readonly bytes: number };
  /** Current counters (read from shared memory the worker updates). */
  progress(): FillProgress;
  cleanup(): Promise<void>;
}

const TREES_MODULE = new URL('./trees.mjs', import.meta.url).href;

/**
 * Prepares `from` (a directory or a tar archive) for mke2fs -d. Temp files go beside `near`
 * (the output image), never to a small /tmp.
 */
export async function prepareFill(from: string, options: { readonly near: string; readonly owner?: OwnerOption; readonly signal?: AbortSignal }): Promise<PreparedFill> {
  const info = await stat(from).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new DiskwrightError('E_NOT_FOUND', `${from} does not exist`, { path: from, hint: 'pass a directory or a tar archive to --from', cause: error });
    throw new DiskwrightError('E_IO', `cannot read ${from}: ${error.message}`, { path: from, cause: error, hint: 'check that this user may read it' });
  });
  const shared = new SharedArrayBuffer(16);
  const view = new BigInt64Array(shared);
  const root = `/diskwright-tree-${randomBytes(6).toString('hex')}`;
  const owner = options.owner ? { owner: { ...options.owner } } : {};
  if (info.isDirectory()) {
    // The totals come from a metadata walk beside the fill: figures gain "of M" once it is done.
    const counting = countTree(from, options.signal);
    let totals: TreeTotals | undefined;
    void counting.totals.then((counted) => {
      totals = counted;
    });
    return {
      root,
      kind: 'dir',
      treeFactory: { module: TREES_MODULE, args: { kind: 'dir', root, dir: from, progress: shared, ...owner } },
      progress: () => ({ files: Number(view[0]), bytes: Number(view[1]), ...(totals ? { totalFiles: totals.files, totalBytes: totals.bytes } : {}) }),
      cleanup: async () => counting.stop(),
    };
  }
  if (!info.isFile()) throw new DiskwrightError('E_INVALID_ARGUMENT', `${from} is neither a directory nor a file`, { path: from });
  const head = new Uint8Array(6);
  const handle = await open(from, 'r');
  try {
    await handle.read(head, 0, 6, 0);
  } finally {
    await handle.close();
  }
  const compression = detectCompression(head);
  let archive = from;
  let temp: string | undefined;
  if (compression !== 'none') {
    temp = tempPathBeside(options.near);
    try {
      await decompress(from, temp, compression, options.signal);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    archive = temp;
  }
  let index: TarIndex;
  try {
    index = indexTar(archive);
  } catch (error) {
    if (temp) await rm(temp, { force: true });
    if (error instanceof DiskwrightError && temp) {
      throw new DiskwrightError(error.code, error.message.replace(temp, `${from} (decompressed)`), { path: from, hint: error.hint, cause: error });
    }
    throw error;
  }
  const totals = { files: index.files, bytes: index.bytes };
  return {
    root,
    kind: 'tar',
    totals,
    treeFactory: { module: TREES_MODULE, args: { kind: 'tar', root, archive, entries: index.entries, progress: shared, ...owner } },
    progress: () => ({ files: Number(view[0]), bytes: Number(view[1]), totalFiles: totals.files, totalBytes: totals.bytes }),
    cleanup: async () => {
      if (temp) await rm(temp, { force: true });
    },
  };
}
