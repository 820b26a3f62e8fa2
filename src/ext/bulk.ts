import type { Overlay } from '../disk/index.js';
import { runToolOnOverlay } from '../e2fs/in-place.js';
import { OPEN_CHECK_COMMAND, openRefusal, openVerdict } from '../e2fs/open-check.js';
import { imageSpec } from '../e2fs/run.js';
import { AbortedError, DiskwrightError, isDiskwrightError, throwIfAborted } from '../errors.js';
import type { ProgressCallback } from '../io/progress.js';

/**
 * The bulk path: large files and big trees are written by the project's own WASM debugfs
 * (e2fsprogs 1.47, wasm/dist) — several times faster than per-block calls through the `ext2fs`
 * package — into the session's copy-on-write overlay of the image (served to debugfs in its
 * worker), so the commit writes only the blocks that changed: cost O(written), not O(used).
 */

/** Files at least this big go through debugfs `write`. */
export const BULK_FILE_BYTES = 4 * 1024 * 1024;
/** Trees with at least this many entries (or BULK_FILE_BYTES of data) go through debugfs. */
export const BULK_TREE_ENTRIES = 256;
/** Commands per debugfs run (keeps each command file and run bounded). */
const MAX_COMMANDS_PER_RUN = 200_000;

/** True unless the bulk path is switched off (DISKWRIGHT_NO_BULK=1: per-call path only). */
export function bulkAvailable(): boolean {
  return process.env.DISKWRIGHT_NO_BULK !== '1';
}

/**
 * A path as one debugfs argument: double-quoted; undefined when it cannot be expressed in a
 * debugfs command line (quotes, backslashes, control characters) — the caller then uses the slow path.
 */
export function debugfsQuote(path: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/["\\\u0000-\u001f\u007f]/.test(path)) return undefined;
  return `"${path}"`;
}

/** Lines debugfs prints on stderr that are not errors. */
function isBenign(line: string): boolean {
  return line === '' || /^debugfs \d/.test(line) || /^Allocated inode: \d+$/.test(line);
}

/** Where a bulk step writes: a copy-on-write overlay of the whole image, the filesystem at `offset`. */
export interface BulkTarget {
  readonly overlay: Overlay;
  /** Byte offset of the filesystem in the image. */
  readonly offset: number;
  /** What the step does, for messages ("writing /opt/big.bin"). */
  readonly step: string;
  /** Initial WebAssembly heap of the run (bytes; default the runner's): small batches start small. */
  readonly initialMemory?: number;
  /**
   * Begin with e2fsprogs 1.47's open check (open-check.ts): a refusal throws its E_EXTFS error
   * (openRefusal) before any command runs; `onPassed` is called when it passed, even if a later
   * command failed.
   */
  readonly openCheck?: { readonly onPassed: () => void };
  /**
   * Write only the bitmap blocks the run changed (debugfs `dw_bitmaps_snapshot` after the open,
   * `dw_bitmaps_flush` at the end; wasm/lib/debugfs-dw-bitmaps.c): libext2fs rewrites every
   * group's bitmaps on close otherwise. For runs of a few small changes.
   */
  readonly changedBitmapsOnly?: boolean;
}

/** The error lines of a debugfs run's stderr (what is not {@link isBenign}). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').map((l) => l.trim()).filter((l) => !isBenign(l));
}

/**
 * Runs debugfs commands (read-write) on `target.overlay` — the WASM debugfs in a worker sees the
 * image with the overlay's changes, and its own changes land in the overlay: nothing reaches
 * `image` (its real path) here; the session commits the overlay. The commands go to debugfs on
 * its stdin (`-f -`): no command file. Any error line fails the batch, and a failed batch stages
 * nothing (the overlay keeps only what was staged before). Returns stdout + stderr.
 */
export async function runDebugfsBatch(image: string, commands: readonly string[], target: BulkTarget, signal?: AbortSignal, onWrite?: () => void): Promise<string> {
  let output = '';
  for (let start = 0; start < commands.length; start += MAX_COMMANDS_PER_RUN) {
    throwIfAborted(signal);
    const check = target.openCheck && start === 0 ? [OPEN_CHECK_COMMAND] : [];
    const chunk = commands.slice(start, start + MAX_COMMANDS_PER_RUN);
    const run = target.changedBitmapsOnly ? ['dw_bitmaps_snapshot', ...chunk, 'dw_bitmaps_flush'] : chunk;
    const stdin = `${[...check, ...run].join('\n')}\n`;
    // debugfs echoes each command on stdout as it starts it ("debugfs: write …").
    let partial = '';
    const onOutput = onWrite
      ? (stream: 'stdout' | 'stderr', text: string): void => {
          if (stream !== 'stdout') return;
          const lines = (partial + text).split('\n');
          partial = lines.pop() ?? '';
          for (const line of lines) if (line.startsWith('debugfs: write ')) onWrite();
        }
      : undefined;
    let result;
    try {
      result = await runToolOnOverlay('debugfs', ['-w', '-f', '-', imageSpec(image, target.offset)], target.overlay, {
        servedPath: image,
        stdin,
        ...(target.initialMemory !== undefined ? { initialMemory: target.initialMemory } : {}),
        accept: (run) => run.exitCode === 0 && errorLines(run.stderr).length === 0,
        ...(signal ? { signal } : {}),
        ...(onOutput ? { onOutput } : {}),
      });
    } catch (error) {
      // Ctrl-C: name diskwright's step, not the tool that happened to run it.
      if (isDiskwrightError(error, 'E_ABORTED')) throw new AbortedError(`${target.step} was interrupted; nothing was written to ${image}`, { cause: error });
      throw error;
    }
    if (check.length > 0) {
      const verdict = openVerdict(result);
      if (verdict?.ok === false) throw openRefusal(image, target.offset, verdict.problem);
      if (verdict?.ok === true) target.openCheck!.onPassed();
    }
    output += `${result.stdout}\n${result.stderr}`;
    const errors = errorLines(result.stderr);
    if (result.exitCode !== 0 || errors.length > 0) {
      throw new DiskwrightError('E_EXTFS', `${target.step} failed: ${errors[0]?.replace(/^debugfs: /, '') ?? `exit code ${result.exitCode}`}`, {
        path: image,
        actual: errors.slice(0, 5),
        hint: 'nothing was written to the image',
      });
    }
  }
  return output;
}

/** What a bulk putFile needs to know. */
export interface BulkPutPlan {
  /** Absolute host path of the source file. */
  readonly source: string;
  /** Normalized in-image destination. */
  readonly dest: string;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** A non-directory exists at dest and must be removed first. */
  readonly replace: boolean;
  readonly onProgress?: ProgressCallback;
}

/**
 * The debugfs commands that set the size of `quoted`. Sizes of 4 GiB and more are set as two
 * 32-bit halves: the WASM debugfs parses a field value with the 32-bit `unsigned long` of wasm32,
 * so `sif F size 4831838208` fails there ("Couldn't parse") although host debugfs takes it.
 */
export function sizeCommands(quoted: string, size: number): string[] {
  if (size < 2 ** 32) return [`sif ${quoted} size ${size}`];
  return [`sif ${quoted} size_lo ${size % 2 ** 32}`, `sif ${quoted} size_hi ${Math.floor(size / 2 ** 32)}`];
}

/** The debugfs commands that set mode and owner of `quoted` (a regular file). */
export function ownershipCommands(quoted: string, mode: number, uid: number, gid: number): string[] {
  const commands = [`sif ${quoted} mode 0${(0o100000 | mode).toString(8)}`];
  if (uid !== 0) commands.push(`sif ${quoted} uid ${uid}`);
  if (gid !== 0) commands.push(`sif ${quoted} gid ${gid}`);
  return commands;
}
