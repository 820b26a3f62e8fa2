import type { ParseArgsConfig } from 'node:util';
import type { Writable } from 'node:stream';

/** What every command receives besides its parsed arguments. */
export interface CommandContext {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** `--json`: machine output on stdout, progress as JSON lines on stderr. */
  readonly json: boolean;
  readonly debug: boolean;
  /** stderr is a terminal: draw progress bars. */
  readonly isTTY: boolean;
  /** Fires on SIGINT/SIGTERM; long operations must honour it and clean up. */
  readonly signal: AbortSignal;
  /** Environment (config lookups, PATH) — injectable for tests. */
  readonly env: NodeJS.ProcessEnv;
}

export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
}

/** One CLI command (`partitions`) or sub-command (`fs ls`). */
export interface Command {
  /** Words that select it: `partitions`, `fs ls`, `template make`. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Usage line(s) and details printed by `--help`. */
  readonly help: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  /** Runs the command and returns the process exit code. Throw DiskwrightError for failures. */
  run(args: ParsedArgs, ctx: CommandContext): Promise<number>;
}

/** Prints a value as JSON (pretty, newline-terminated) on stdout. */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2)}\n`);
}

/** Reads a string option, or undefined. */
export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** Reads a boolean flag. */
export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}
