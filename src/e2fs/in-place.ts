import { toolStep } from './progress.js';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commitOverlayInterruptibly, openImage, openResolved, Overlay, resolveFormat, withImage, type CommitSummary, type Disk, type DiskFormat } from '../disk/index.js';
import { DiskwrightError } from '../errors.js';
import { applyShippedChanges, discardShippedChanges, shipChanges, type DiskFactoryArgs, type DiskSpec, type ShippedChanges } from './disk-factory.js';
import { runE2fsTool, type E2fsTool, type E2fsToolResult, type RunE2fsToolOptions } from './run.js';

/**
 * Tool-driven in-place changes (fsck --fix, resize, tune, the bulk debugfs path): the tool runs
 * in a worker on a copy-on-write overlay of the image (src/e2fs/disk-factory.ts), never on the
 * file; its changed blocks come back and are committed by the one commit mechanism
 * (src/disk/commit.ts) — old or new after a kill -9, ENOSPC rolled back in-process.
 */

/**
 * The factory module the worker imports. The worker cannot load TypeScript, so this is always
 * the compiled copy in dist/ (from src/e2fs under vitest, dist/e2fs when installed).
 */
export function diskFactoryModule(): string {
  return fileURLToPath(new URL('../../dist/e2fs/disk-factory.js', import.meta.url));
}

export interface OverlayRunOptions extends Omit<RunE2fsToolOptions, 'diskFactory'> {
  /** The path the tool is given (default: the image's path); relative paths resolve against the cwd. */
  readonly servedPath?: string;
}

/** Options of {@link runToolOnOverlay}. */
export interface OverlayChangeOptions extends OverlayRunOptions {
  /**
   * Whether the run's changes go into the overlay (default: always). False leaves the overlay
   * exactly as it was before the run — a failed batch stages nothing.
   */
  readonly accept?: (result: E2fsToolResult) => boolean;
}

/** Options of {@link runToolOnImage}: the image's format as `--format` gives it. */
export interface ImageRunOptions extends OverlayRunOptions {
  /** Forced format (`--format`; qcow2 then trusts the backing chain). Default: the probing rule. */
  readonly format?: DiskFormat;
  /** Record the byte ranges the tool reads: the result's `diskResult[path]` is a RecordedReads. */
  readonly recordReads?: boolean;
}

/** What the worker needs to open `image` as the parent decided (docs/qcow2.md's rule, here). */
function imageSource(image: string, format: DiskFormat | undefined): Pick<DiskSpec, 'image' | 'format' | 'trustBacking'> {
  const resolved = resolveFormat(image, format);
  // Opened here once so that a refusal (an untrusted backing file, a damaged header) is this
  // process's typed one-line error, not a worker failure.
  if (resolved.format === 'qcow2') openResolved(image, resolved, { readOnly: true }).close();
  return { image: resolve(image), format: resolved.format, trustBacking: resolved.source !== 'probed' };
}

/** The spec of an already open Disk: its own format, its chain trusted iff the parent opened one. */
function diskSource(disk: Disk): Pick<DiskSpec, 'image' | 'format' | 'trustBacking'> {
  return { image: disk.path, format: disk.format, trustBacking: disk.backing !== undefined };
}

/**
 * Runs `tool argv` with `image` served read-only through the block layer (raw or qcow2, never a
 * host-file path into the image): e2fsck -n, dumpe2fs, debugfs reads. `mode` `direct` instead
 * serves it writable for a new private image (see {@link runToolDirect}).
 */
export async function runToolOnImage(tool: E2fsTool, argv: readonly string[], image: string, options: ImageRunOptions = {}, mode: 'read' | 'direct' = 'read'): Promise<E2fsToolResult> {
  const { servedPath, format, recordReads, ...runOptions } = options;
  const args: DiskFactoryArgs = { disks: [{ path: resolve(servedPath ?? image), mode, ...imageSource(image, format), ...(recordReads ? { recordReads } : {}) }] };
  return runE2fsTool(tool, argv, { ...runOptions, diskFactory: { module: diskFactoryModule(), args } });
}

/**
 * Runs `tool argv` writing straight into `image` — no overlay, no commit record, nothing shipped
 * back. Only for a new private file the caller renames into place when complete (a thin
 * instance's qcow2 overlay, a working copy): a kill leaves a temp file, never a half-changed
 * image anyone uses. A qcow2's metadata is flushed before the run reports success.
 */
export function runToolDirect(tool: E2fsTool, argv: readonly string[], image: string, options: ImageRunOptions = {}): Promise<E2fsToolResult> {
  return runToolOnImage(tool, argv, image, options, 'direct');
}

/**
 * Runs `tool argv` with the image under `overlay` served at `servedPath` as a copy-on-write
 * overlay that starts from `overlay`'s changes; the tool's changes land in `overlay` (nothing
 * reaches the file) unless `options.accept` declines them. On a crash or abort `overlay` is left
 * as it was.
 */
export async function runToolOnOverlay(tool: E2fsTool, argv: readonly string[], overlay: Overlay, options: OverlayChangeOptions = {}): Promise<E2fsToolResult> {
  const { servedPath, accept, ...runOptions } = options;
  const path = resolve(servedPath ?? overlay.path);
  const staged = overlay.clean ? undefined : shipChanges(overlay);
  const args: DiskFactoryArgs = {
    disks: [{ path, ...diskSource(overlay.base), mode: 'overlay', size: overlay.size, ...(staged ? { changes: staged } : {}) }],
  };
  let result: E2fsToolResult;
  try {
    result = await runE2fsTool(tool, argv, { ...runOptions, diskFactory: { module: diskFactoryModule(), args } });
  } finally {
    discardShippedChanges(staged);
  }
  const changes = (result.diskResult as Record<string, ShippedChanges> | undefined)?.[path];
  if (changes && accept && !accept(result)) {
    discardShippedChanges(changes);
    return result;
  }
  if (!changes) {
    throw new DiskwrightError('E_WASM', `${toolStep(tool)} returned no changes for ${path}`, { path, hint: 'this is a diskwright bug; run with --debug' });
  }
  try {
    // The worker started from the staged changes: what it returns is the complete set.
    overlay.clear();
    applyShippedChanges(overlay, changes);
  } finally {
    discardShippedChanges(changes);
  }
  return result;
}

export interface InPlaceOptions {
  readonly signal?: AbortSignal;
  /** Forced format (`--format`); default: diskwright's record, else the qcow2 magic. */
  readonly format?: DiskFormat;
  /** Blocks whose old bytes need no saving (ext blocks that were free before the change). */
  readonly needsNoSave?: (position: number, length: number) => boolean;
  /**
   * False for a private temp image nobody else sees (the instance pipeline's copy): the changes
   * are written without a commit record or fsync — the final fsync + rename makes them durable.
   */
  readonly durable?: boolean;
}

/** What {@link changeInPlace}'s callback decides. */
export interface InPlaceOutcome<T> {
  readonly value: T;
  /** Commit the overlay's changes (false: the image stays byte-identical). */
  readonly commit: boolean;
}

/**
 * Opens `image` under the write lock (withImage: an interrupted commit is rolled back first) through
 * the block layer (raw, or qcow2: the commit then writes into the qcow2) with a
 * copy-on-write overlay, lets `fn` stage changes in it (tools through {@link runToolOnOverlay},
 * direct writes, a grown size), and commits them crash-safely when `fn` asks to. Returns `fn`'s
 * value and the commit summary (undefined when nothing was committed).
 */
export async function changeInPlace<T>(image: string, options: InPlaceOptions, fn: (overlay: Overlay) => Promise<InPlaceOutcome<T>>): Promise<{ value: T; commit: CommitSummary | undefined }> {
  return withImage(image, { access: 'write', ...(options.signal ? { signal: options.signal } : {}) }, async ({ path: real }) => {
    const raw = openImage(real, { readOnly: false, ...(options.format ? { format: options.format } : {}) });
    const overlay = new Overlay(raw);
    try {
      const outcome = await fn(overlay);
      if (!outcome.commit || overlay.clean) return { value: outcome.value, commit: undefined };
      const commit = await commitOverlayInterruptibly(overlay, {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.needsNoSave ? { needsNoSave: options.needsNoSave } : {}),
        ...(options.durable === false ? { durable: false } : {}),
      });
      return { value: outcome.value, commit };
    } finally {
      overlay.close();
      raw.close();
    }
  });
}
