import type { Writable } from 'node:stream';
import { parseSize } from '../bytes/size.js';
import { InvalidArgumentError } from '../errors.js';

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

/** One option of a command (the shape node:util parseArgs takes; parsed by args.ts). */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean | string[] | boolean[];
}

/** A command's options by long name. */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

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
  /** Long option names as sfdisk/qemu-img/virt-install spell them; see RESERVED_SHORT_FLAGS in args.ts. */
  readonly options: OptionSpecs;
  /** Runs the command and returns the process exit code. Throw DiskwrightError for failures. */
  run(args: ParsedArgs, ctx: CommandContext): Promise<number>;
  /** The exit code for an error `run` threw, when the command's codes are not the CLI's (fsck: e2fsck's). */
  exitCodeFor?(error: unknown): number;
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

/** The flag that lets `--size`-like options name a size that is not whole 512-byte sectors. */
export const ALLOW_UNALIGNED_OPTION = { 'allow-unaligned': { type: 'boolean' } } as const;

/**
 * A disk size (`10G`, `2048s`): positive and a multiple of 512 — a disk of 10 bytes is a typo for
 * 10G, not a request — unless the command has `--allow-unaligned` and it was given.
 */
export function diskSize(args: ParsedArgs, text: string, option: string): number {
  const bytes = parseSize(text, option);
  if (bytes <= 0) throw new InvalidArgumentError(`Expected \`${option}\` to be a positive size like 10G, got \`${text}\``);
  if (bytes % 512 !== 0 && !flag(args, 'allow-unaligned')) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a multiple of 512 bytes (whole sectors), got \`${text}\` (${bytes} bytes)`, {
      hint: 'add a unit (10G, 512M, 2048s), or pass --allow-unaligned for a file of exactly that many bytes',
    });
  }
  return bytes;
}
