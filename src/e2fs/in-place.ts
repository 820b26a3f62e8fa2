import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commitOverlay, Overlay, RawFileDisk, withImage, type CommitSummary } from '../disk/index.js';
import { DiskwrightError } from '../errors.js';
import { applyShippedChanges, discardShippedChanges, shipChanges, type DiskFactoryArgs, type ShippedChanges } from './disk-factory.js';
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

/**
 * Runs `tool argv` with the image under `overlay` served at `servedPath` as a copy-on-write
 * overlay that starts from `overlay`'s changes; the tool's changes land in `overlay` (nothing
 * reaches the file). On a crash or abort `overlay` is left as it was.
 */
export async function runToolOnOverlay(tool: E2fsTool, argv: readonly string[], overlay: Overlay, options: OverlayRunOptions = {}): Promise<E2fsToolResult> {
  const { servedPath, ...runOptions } = options;
  const path = resolve(servedPath ?? overlay.path);
  const staged = overlay.clean ? undefined : shipChanges(overlay);
  const args: DiskFactoryArgs = {
    disks: [{ path, image: overlay.base.path, mode: 'overlay', size: overlay.size, ...(staged ? { changes: staged } : {}) }],
  };
  let result: E2fsToolResult;
  try {
    result = await runE2fsTool(tool, argv, { ...runOptions, diskFactory: { module: diskFactoryModule(), args } });
  } finally {
    discardShippedChanges(staged);
  }
  const changes = (result.diskResult as Record<string, ShippedChanges> | undefined)?.[path];
  if (!changes) {
    throw new DiskwrightError('E_WASM', `${tool} returned no changes for ${path}`, { path, hint: 'this is a diskwright bug; run with --debug' });
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
 * Opens `image` under the write lock (withImage: an interrupted commit is rolled back first) with a
 * copy-on-write overlay, lets `fn` stage changes in it (tools through {@link runToolOnOverlay},
 * direct writes, a grown size), and commits them crash-safely when `fn` asks to. Returns `fn`'s
 * value and the commit summary (undefined when nothing was committed).
 */
export async function changeInPlace<T>(image: string, options: InPlaceOptions, fn: (overlay: Overlay) => Promise<InPlaceOutcome<T>>): Promise<{ value: T; commit: CommitSummary | undefined }> {
  return withImage(image, { access: 'write', ...(options.signal ? { signal: options.signal } : {}) }, async ({ path: real }) => {
    const raw = RawFileDisk.open(real, { readOnly: false });
    const overlay = new Overlay(raw);
    try {
      const outcome = await fn(overlay);
      if (!outcome.commit || overlay.clean) return { value: outcome.value, commit: undefined };
      const commit = commitOverlay(overlay, {
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
