import { DiskwrightError, onAbortReport } from '../errors.js';
import { parseCommandLine } from './args.js';
import type { Command, CommandContext } from './command.js';
import { listCommands, loadCommand, type CommandEntry } from './registry.js';
import { activityFor, interruptedMessage } from './progress.js';

/**
 * Exit codes of every command but fsck (which mirrors e2fsck's). `terminated` (128 + SIGTERM)
 * replaces `aborted` (128 + SIGINT) when SIGTERM stopped the run (src/cli/main.ts).
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, aborted: 130, brokenPipe: 141, terminated: 143 } as const;

function findCommand(commands: readonly CommandEntry[], argv: readonly string[]): { command: CommandEntry; rest: string[] } | undefined {
  const two = argv.slice(0, 2).join(' ');
  const byTwo = commands.find((c) => c.name === two);
  if (byTwo) return { command: byTwo, rest: argv.slice(2) };
  const byOne = commands.find((c) => c.name === argv[0]);
  return byOne ? { command: byOne, rest: argv.slice(1) } : undefined;
}

function usage(commands: readonly CommandEntry[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'diskwright — build VM templates and instances without root, mounts or a helper VM',
    '',
    'Usage: diskwright COMMAND [ARGS] [--json] [--debug] [--help]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `diskwright COMMAND --help` for a command\'s options.',
    '',
  ].join('\n');
}

function groupUsage(commands: readonly CommandEntry[], word: string): string | undefined {
  const group = commands.filter((c) => c.name.startsWith(`${word} `));
  if (group.length === 0) return undefined;
  return [`Usage: diskwright ${word} SUBCOMMAND ...`, '', ...group.map((c) => `  ${c.name}  ${c.summary}`), ''].join('\n');
}

/** One line for an error, plus the hint; the stack only with --debug. */
export function formatError(error: unknown, debug: boolean): string {
  if (debug && error instanceof Error) {
    let text = error.stack ?? String(error);
    let cause = error.cause;
    while (cause instanceof Error) {
      text += `\ncaused by: ${cause.stack ?? cause.message}`;
      cause = cause.cause;
    }
    return `${text}\n`;
  }
  if (error instanceof DiskwrightError) {
    const hint = error.hint ? `\n  hint: ${error.hint}` : '';
    return `diskwright: ${error.message} [${error.code}]${hint}\n`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `diskwright: internal error: ${message.split('\n')[0]} (run with --debug for details)\n`;
}

/** The reader closed our stdout (`diskwright … | head -1`): not an error, like a native tool. */
export function isBrokenPipe(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EPIPE';
}

/** `--json` errors: one JSON line on stderr, so scripts never parse prose. */
export function formatJsonError(error: unknown): string {
  const body =
    error instanceof DiskwrightError
      ? { code: error.code, message: error.message, hint: error.hint ?? null }
      : { code: 'E_INTERNAL', message: `internal error: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`, hint: 'run with --debug for details' };
  return `${JSON.stringify({ error: body })}\n`;
}

/** Exit status for a failure. */
export function exitCodeFor(error: unknown): number {
  if (isBrokenPipe(error)) return EXIT.brokenPipe;
  if (error instanceof DiskwrightError) {
    if (error.code === 'E_ABORTED') return EXIT.aborted;
    if (error.code === 'E_USAGE' || error.code === 'E_INVALID_ARGUMENT') return EXIT.usage;
  }
  return EXIT.failure;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const options = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  const debug = options.includes('--debug');
  const json = options.includes('--json');
  let commandName: string | undefined;
  let command: Command | undefined;
  let reported = false;
  try {
    const commands = await listCommands();
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      ctx.stdout.write(usage(commands));
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    if (argv[0] === '--version') {
      ctx.stdout.write('diskwright 0.1.0\n');
      return EXIT.ok;
    }
    const found = findCommand(commands, argv);
    if (!found) {
      const group = groupUsage(commands, argv[0]!);
      if (group && (argv.length === 1 || argv[1] === '--help' || argv[1] === '-h')) {
        ctx.stdout.write(group);
        return argv.length === 1 ? EXIT.usage : EXIT.ok;
      }
      throw new DiskwrightError('E_USAGE', `unknown command \`${argv.slice(0, group ? 2 : 1).join(' ')}\``, {
        hint: 'run `diskwright --help` for the list of commands',
      });
    }
    const { command: entry, rest } = found;
    commandName = entry.name;
    const parsed = parseCommandLine(entry.name, rest, entry.options);
    if (parsed.values.help === true) {
      ctx.stdout.write(`${entry.help.trimEnd()}\n`);
      return EXIT.ok;
    }
    command = await loadCommand(entry);
    const commandCtx: CommandContext = { ...ctx, json: parsed.values.json === true, debug };
    // A failure path about to clean up after Ctrl-C reports it first (errors.ts reportAbort).
    onAbortReport(ctx.signal, () => {
      // A progress bar may be on the line: the message gets a line of its own.
      if (ctx.isTTY && !json) ctx.stderr.write('\r\x1b[2K');
      write(interrupted(entry.name, ctx.signal.reason));
      reported = true;
    });
    return await command.run(parsed, commandCtx);
  } catch (caught) {
    if (isBrokenPipe(caught)) return EXIT.brokenPipe;
    const abort = caught instanceof DiskwrightError && caught.code === 'E_ABORTED' && ctx.signal.aborted && commandName !== undefined;
    // Reported before the clean-up: said once. Anything else that went wrong is said too.
    if (abort && reported) return EXIT.aborted;
    const error = abort ? interrupted(commandName!, caught) : caught;
    write(error);
    return command?.exitCodeFor?.(error) ?? exitCodeFor(error);
  }

  function write(error: unknown): void {
    ctx.stderr.write(json && !debug ? formatJsonError(error) : formatError(error, debug));
  }

  /** Ctrl-C: named by diskwright's step and what the command leaves, not the internal tool that ran. */
  function interrupted(command: string, cause: unknown): DiskwrightError {
    return new DiskwrightError('E_ABORTED', interruptedMessage(command, activityFor(ctx.signal)), { hint: INTERRUPT_HINT, cause });
  }
}

const INTERRUPT_HINT = 'nothing half-done is left: outputs are removed and in-place changes rolled back; run the command again';
