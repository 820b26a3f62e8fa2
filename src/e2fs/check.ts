import type { DiskFormat } from '../disk/index.js';
import { DiskwrightError } from '../errors.js';
import { resolve } from 'node:path';
import type { RecordedReads } from './disk-factory.js';
import { changeInPlace, runToolDirect, runToolOnImage, runToolOnOverlay } from './in-place.js';
import { imageSpec } from './run.js';
import { e2fsckProgressFilter, type PassCallback } from './progress.js';

/** `check` = e2fsck -n (read-only), `preen` = -p (safe automatic fixes), `fix` = -y (answer yes). */
export type CheckMode = 'check' | 'preen' | 'fix';

export interface CheckFilesystemOptions {
  /** Byte offset of the filesystem inside the image (a partition). */
  readonly offset?: number | bigint;
  readonly mode: CheckMode;
  /** Check even if the filesystem is marked clean (-f). Default: true for check/fix, false for preen. */
  readonly force?: boolean;
  /** Fixed time for reproducible results (E2FSCK_TIME / E2FSPROGS_FAKE_TIME, seconds since 1970). */
  readonly fakeTime?: number;
  readonly signal?: AbortSignal;
  /** Output chunks as e2fsck prints them. */
  readonly onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
  /** preen/fix of a private temp image: commit without record or fsync (InPlaceOptions.durable). */
  readonly durable?: boolean;
  /** The image's format (`--format`; qcow2 trusts its backing chain). Default: the probing rule. */
  readonly format?: DiskFormat;
  /**
   * preen/fix of a new private image (a thin instance's overlay): e2fsck writes the file directly,
   * no overlay and no commit — the caller renames the file into place when complete.
   */
  readonly direct?: boolean;
  /** e2fsck's passes as they run (e2fsck -C 0; its bar is removed from `output` and `onOutput`). */
  readonly onPass?: PassCallback;
  /**
   * `check` only: record which byte ranges of the image e2fsck read (every piece of metadata it
   * checked), returned as `reads` — what a later reader of the same image can ask the kernel to
   * read ahead (src/instance/prefetch.ts).
   */
  readonly recordReads?: boolean;
}

export type CheckStatus = 'clean' | 'fixed' | 'uncorrectable' | 'error';

export interface CheckResult {
  /** e2fsck's own exit code (bit mask: 1 fixed, 2 reboot, 4 uncorrected, 8 operational error, …). */
  readonly exitCode: number;
  readonly status: CheckStatus;
  /** stdout and stderr of e2fsck, in that order. */
  readonly output: string;
  /** With `recordReads`: the ranges read, flat `[position, length, …]`, sorted and merged. */
  readonly reads?: readonly number[];
}

/** e2fsck exit code bits (e2fsck(8)). */
export const FSCK_EXIT = {
  OK: 0,
  NONDESTRUCT: 1,
  DESTRUCT: 2,
  UNCORRECTED: 4,
  ERROR: 8,
  USAGE: 16,
  CANCELED: 32,
  LIBRARY: 128,
} as const;

/** Maps an e2fsck exit code to a status. */
export function fsckExitStatus(exitCode: number): CheckStatus {
  // Operational errors, and any bit e2fsck does not define, are errors.
  if (exitCode & ~(FSCK_EXIT.NONDESTRUCT | FSCK_EXIT.DESTRUCT | FSCK_EXIT.UNCORRECTED)) return 'error';
  if (exitCode & FSCK_EXIT.UNCORRECTED) return 'uncorrectable';
  if (exitCode & (FSCK_EXIT.NONDESTRUCT | FSCK_EXIT.DESTRUCT)) return 'fixed';
  return 'clean';
}

/** The e2fsck argv for a mode (without the device). */
export function fsckArgs(mode: CheckMode, force: boolean | undefined): string[] {
  const flags = { check: '-n', preen: '-p', fix: '-y' } as const;
  const flag = flags[mode];
  if (flag === undefined) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected \`mode\` to be check, preen or fix, got \`${String(mode)}\``);
  }
  return [...((force ?? mode !== 'preen') ? ['-f'] : []), flag];
}

/** Exit bits after which e2fsck's writes are not committed (operational error, usage, cancel, library). */
const NOT_COMMITTED = FSCK_EXIT.ERROR | FSCK_EXIT.USAGE | FSCK_EXIT.CANCELED | FSCK_EXIT.LIBRARY;

/**
 * Checks (and with preen/fix, repairs) an ext2/3/4 filesystem with the WebAssembly e2fsck.
 * Resolves with e2fsck's exact exit code whatever it is; only a crash or abort rejects.
 * Repairs run on a copy-on-write overlay and are committed crash-safely when e2fsck finished
 * (exit code without the 8/16/32/128 bits): after a kill -9 the image is the old one or the
 * repaired one, never half-repaired.
 */
export async function checkFilesystem(image: string, options: CheckFilesystemOptions): Promise<CheckResult> {
  const { onPass } = options;
  const argv = [...fsckArgs(options.mode, options.force), ...(onPass ? ['-C', '0'] : []), imageSpec(image, options.offset)];
  const env: Record<string, string> = {};
  if (options.fakeTime !== undefined) {
    env.E2FSCK_TIME = String(options.fakeTime);
    env.E2FSPROGS_FAKE_TIME = String(options.fakeTime);
  }
  const onOutput = passFilteredOutput(options.onOutput, onPass);
  const run = {
    env,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(onOutput ? { onOutput } : {}),
  };
  const output = (result: { stdout: string; stderr: string }): string => (onPass ? withoutProgressBar(result.stdout) : result.stdout) + result.stderr;
  const format = options.format ? { format: options.format } : {};
  if (options.mode === 'check' || options.direct) {
    // -n opens the device read-only: it is served read-only through the block layer.
    const record = options.mode === 'check' && options.recordReads === true;
    const result = await (options.mode === 'check' ? runToolOnImage : runToolDirect)('e2fsck', argv, image, { ...run, ...format, ...(record ? { recordReads: true } : {}) });
    const recorded = record ? (result.diskResult as Record<string, RecordedReads> | undefined)?.[resolve(image)] : undefined;
    // A truncated record is still a true subset of what was read: a read-ahead hint.
    const reads = recorded?.reads;
    return { exitCode: result.exitCode, status: fsckExitStatus(result.exitCode), output: output(result), ...(reads ? { reads } : {}) };
  }
  const { value } = await changeInPlace(image, { ...(options.signal ? { signal: options.signal } : {}), ...(options.durable === false ? { durable: false } : {}), ...format }, async (overlay) => {
    const result = await runToolOnOverlay('e2fsck', argv, overlay, { ...run, servedPath: image });
    return { value: result, commit: (result.exitCode & NOT_COMMITTED) === 0 };
  });
  return { exitCode: value.exitCode, status: fsckExitStatus(value.exitCode), output: output(value) };
}

/** e2fsck -C 0's bar segments (`\x01…\x02`) removed: the log reads as e2fsck's without a bar. */
export function withoutProgressBar(text: string): string {
  return text.replace(/\x01[^\x02]*\x02/g, '');
}

/** The caller's output callback fed through the bar filter, which reports passes. */
function passFilteredOutput(
  onOutput: CheckFilesystemOptions['onOutput'],
  onPass: PassCallback | undefined,
): CheckFilesystemOptions['onOutput'] {
  if (!onPass) return onOutput;
  const filter = e2fsckProgressFilter(onPass);
  return (stream, text) => {
    const shown = stream === 'stdout' ? filter.write(text) : text;
    if (shown !== '') onOutput?.(stream, shown);
  };
}
