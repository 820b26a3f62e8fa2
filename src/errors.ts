/**
 * The one error model of diskwright: every failure is a {@link DiskwrightError} with a literal
 * `code`, structured fields where they help, and the original error kept as `cause`.
 * The CLI prints `message` on one line; `--debug` adds the stack.
 */

/** Every code diskwright throws. Scripts may switch on these; they are part of the API. */
export type ErrorCode =
  | 'E_TRUNCATED'
  | 'E_BAD_SIGNATURE'
  | 'E_BAD_CHECKSUM'
  | 'E_OUT_OF_RANGE'
  | 'E_OVERLAP'
  | 'E_LOOP'
  | 'E_LIMIT'
  | 'E_NO_PARTITION'
  | 'E_NOT_FOUND'
  | 'E_EXISTS'
  | 'E_IO'
  | 'E_EXTFS'
  | 'E_NEEDS_RECOVERY'
  | 'E_UNSUPPORTED_FEATURE'
  | 'E_FSCK'
  | 'E_WASM'
  | 'E_VIRT'
  | 'E_TEMPLATE'
  | 'E_BOOT'
  | 'E_INVALID_ARGUMENT'
  | 'E_USAGE'
  | 'E_SCRIPT'
  | 'E_ABORTED'
  | 'E_UNTRUSTED_BACKING'
  | 'E_BACKING_CHANGED'
  | 'E_TEMPLATE_IN_USE'
  | 'E_LOCKED';

export interface ErrorDetails {
  /** Byte offset in the image (or table) where the problem was found. */
  offset?: number | bigint;
  expected?: unknown;
  actual?: unknown;
  /** A path (host or in-image) the error is about. */
  path?: string;
  /** What the user can do next, printed after the message by the CLI. */
  hint?: string;
  cause?: unknown;
}

/** Base class of every error diskwright throws on purpose. */
export class DiskwrightError extends Error {
  override readonly name: string = 'DiskwrightError';
  readonly code: ErrorCode;
  readonly offset: number | bigint | undefined;
  readonly expected: unknown;
  readonly actual: unknown;
  readonly path: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.offset = details.offset;
    this.expected = details.expected;
    this.actual = details.actual;
    this.path = details.path;
    this.hint = details.hint;
  }
}

/** Input bytes end before a structure they must hold. */
export class TruncatedError extends DiskwrightError {
  override readonly name = 'TruncatedError';
  constructor(message: string, details: ErrorDetails = {}) {
    super('E_TRUNCATED', message, details);
  }
}

/** A magic number or signature is not what the format requires. */
export class BadSignatureError extends DiskwrightError {
  override readonly name = 'BadSignatureError';
  constructor(message: string, details: ErrorDetails = {}) {
    super('E_BAD_SIGNATURE', message, details);
  }
}

/** A value read from untrusted bytes exceeds a named limit. */
export class LimitError extends DiskwrightError {
  override readonly name = 'LimitError';
  constructor(message: string, details: ErrorDetails = {}) {
    super('E_LIMIT', message, details);
  }
}

/** A user-supplied option or argument is invalid. */
export class InvalidArgumentError extends DiskwrightError {
  override readonly name = 'InvalidArgumentError';
  constructor(message: string, details: ErrorDetails = {}) {
    super('E_INVALID_ARGUMENT', message, details);
  }
}

/** An operation was cancelled through its AbortSignal. */
export class AbortedError extends DiskwrightError {
  override readonly name = 'AbortedError';
  constructor(message = 'operation aborted', details: ErrorDetails = {}) {
    super('E_ABORTED', message, details);
  }
}

/** True when `error` is a DiskwrightError, optionally with the given code. */
export function isDiskwrightError(error: unknown, code?: ErrorCode): error is DiskwrightError {
  return error instanceof DiskwrightError && (code === undefined || error.code === code);
}

// Keyed by the run's AbortSignal: the CLI registers how it reports an interrupt (src/cli/run.ts).
const abortReporters = new WeakMap<AbortSignal, () => void>();

/**
 * Lets the CLI answer Ctrl-C before the clean-up: `report` runs once, the first time a failure
 * path calls {@link reportAbort} for `signal`.
 */
export function onAbortReport(signal: AbortSignal, report: () => void): void {
  abortReporters.set(signal, report);
}

/**
 * Called by a failure path before a clean-up that may take a while (removing GiBs of temp file,
 * rolling a commit back, punching data written in place): once `signal` has fired, nothing of
 * this run is kept, so the interrupt is reported now instead of after the clean-up. Removing
 * 1.6 GiB of dirty temp file alone took 0.4–0.5 s here.
 */
export function reportAbort(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const report = abortReporters.get(signal);
  if (!report) return;
  abortReporters.delete(signal);
  report();
}

/** Throws an {@link AbortedError} when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
}
