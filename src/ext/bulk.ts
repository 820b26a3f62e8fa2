import { closeSync, fstatSync, openSync, readSync, writeSync, ftruncateSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as e2fs from '../e2fs/index.js';
import * as extmeta from '../extmeta/index.js';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import type { ProgressCallback } from '../io/progress.js';

/**
 * The bulk path: large files and big trees are written by the project's own WASM debugfs
 * (e2fsprogs 1.47, wasm/dist) — several times faster than per-block calls through the `ext2fs`
 * package — into a private working copy of the image that replaces the image by rename at commit.
 */

/** Files at least this big go through debugfs `write`. */
export const BULK_FILE_BYTES = 4 * 1024 * 1024;
/** Trees with at least this many entries (or BULK_FILE_BYTES of data) go through debugfs. */
export const BULK_TREE_ENTRIES = 256;
/** Commands per debugfs run (keeps each command file and run bounded). */
const MAX_COMMANDS_PER_RUN = 200_000;

type RunTool = (
  tool: 'debugfs',
  argv: string[],
  options: { signal?: AbortSignal; onOutput?: (stream: 'stdout' | 'stderr', text: string) => void },
) => Promise<{ exitCode: number; stdout: string; stderr: string }>;
type ReadUsed = (image: string, location: { offset?: number }) => Promise<{ start: bigint; length: bigint }[]>;

function runner(): RunTool | undefined {
  const run = (e2fs as unknown as { runE2fsTool?: RunTool }).runE2fsTool;
  return typeof run === 'function' ? run : undefined;
}

/** True when this build carries the WASM debugfs runner (src/e2fs). */
export function bulkAvailable(): boolean {
  return runner() !== undefined && process.env.DISKWRIGHT_NO_BULK !== '1';
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

/** Runs debugfs commands against `image` (read-write); any error line fails the batch. Returns stdout + stderr. */
export async function runDebugfsBatch(image: string, commands: readonly string[], signal?: AbortSignal, onWrite?: () => void): Promise<string> {
  const run = runner();
  if (!run) throw new DiskwrightError('E_WASM', 'the WASM debugfs runner is not available in this build');
  const dir = await mkdtemp(join(tmpdir(), 'diskwright-debugfs-'));
  let stderr = '';
  try {
    for (let start = 0; start < commands.length; start += MAX_COMMANDS_PER_RUN) {
      throwIfAborted(signal);
      const file = join(dir, 'commands');
      await writeFile(file, `${commands.slice(start, start + MAX_COMMANDS_PER_RUN).join('\n')}\n`);
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
      const result = await run('debugfs', ['-w', '-f', file, image], { ...(signal ? { signal } : {}), ...(onOutput ? { onOutput } : {}) });
      stderr += `${result.stdout}\n${result.stderr}`;
      const errors = result.stderr.split('\n').map((l) => l.trim()).filter((l) => !isBenign(l));
      if (result.exitCode !== 0 || errors.length > 0) {
        throw new DiskwrightError('E_EXTFS', `debugfs failed: ${errors[0] ?? `exit code ${result.exitCode}`}`, {
          path: image,
          actual: errors.slice(0, 5),
          hint: 'nothing was written to the image',
        });
      }
    }
    return stderr;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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

/** The debugfs commands that set mode and owner of `quoted` (a regular file). */
export function ownershipCommands(quoted: string, mode: number, uid: number, gid: number): string[] {
  const commands = [`sif ${quoted} mode 0${(0o100000 | mode).toString(8)}`];
  if (uid !== 0) commands.push(`sif ${quoted} uid ${uid}`);
  if (gid !== 0) commands.push(`sif ${quoted} gid ${gid}`);
  return commands;
}

/** The inode number debugfs reported ("Allocated inode: N", on stdout) for the last file it created. */
export function lastAllocatedInode(stderr: string): number | undefined {
  const all = [...stderr.matchAll(/^Allocated inode: (\d+)$/gm)];
  const last = all.at(-1);
  return last ? Number(last[1]) : undefined;
}

/**
 * Makes the private working copy: a sparse file of the image's size holding the blocks in use
 * (from the block bitmaps) and anything past the filesystem's end. Free blocks become holes.
 */
export async function createWorkingCopy(image: string, target: string, fsBytes: number, signal?: AbortSignal): Promise<void> {
  const readUsed = (extmeta as unknown as { readUsedBlockRanges?: ReadUsed }).readUsedBlockRanges;
  const src = openSync(image, 'r');
  const dst = openSync(target, 'wx', 0o600);
  try {
    const size = fstatSync(src).size;
    ftruncateSync(dst, size);
    const whole = [{ start: 0, length: Math.min(fsBytes, size) }];
    // Layouts the bitmap reader does not handle (e.g. bigalloc) are copied whole: slower, same result.
    const used = readUsed ? await readUsed(image, {}).catch(() => undefined) : undefined;
    const ranges: { start: number; length: number }[] = used ? used.map((r) => ({ start: Number(r.start), length: Number(r.length) })) : whole;
    if (size > fsBytes) ranges.push({ start: fsBytes, length: size - fsBytes });
    const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (const range of ranges) {
      throwIfAborted(signal);
      for (let done = 0; done < range.length; ) {
        const want = Math.min(buffer.length, range.length - done);
        const n = readSync(src, buffer, 0, want, range.start + done);
        if (n === 0) break;
        let written = 0;
        while (written < n) written += writeSync(dst, buffer, written, n - written, range.start + done + written);
        done += n;
      }
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}
