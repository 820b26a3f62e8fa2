import { describe, expect, it } from 'vitest';
import { effectiveOptions, parseCommandLine, RESERVED_SHORT_FLAGS } from '../../../src/cli/args.js';
import { collectCommands } from '../../../src/cli/registry.js';
import { DiskwrightError } from '../../../src/errors.js';

const OPTIONS = {
  size: { type: 'string', short: 's' },
  partition: { type: 'string' },
  long: { type: 'boolean', short: 'l' },
  recursive: { type: 'boolean', short: 'r' },
  force: { type: 'boolean' },
} as const;

function failure(argv: string[]): DiskwrightError {
  try {
    parseCommandLine('x', argv, OPTIONS);
  } catch (error) {
    if (error instanceof DiskwrightError) return error;
    throw error;
  }
  throw new Error('expected a usage error');
}

describe('the command-line parser', () => {
  it('gives a value starting with a dash to a string option, so its own check can name it', () => {
    expect(parseCommandLine('x', ['--size', '-5G'], OPTIONS).values.size).toBe('-5G');
  });

  it('reads --name=value, -s value, -svalue, bundled booleans and stops at --', () => {
    const parsed = parseCommandLine('x', ['a', '--size=1G', '-lr', '--', '--force', '-l'], OPTIONS);
    expect(parsed.values).toMatchObject({ size: '1G', long: true, recursive: true });
    expect(parsed.values.force).toBeUndefined();
    expect(parsed.positionals).toEqual(['a', '--force', '-l']);
    expect(parseCommandLine('x', ['-s2G'], OPTIONS).values.size).toBe('2G');
  });

  it('treats a negative number as a positional (resize IMAGE -5G is refused by the size check)', () => {
    expect(parseCommandLine('x', ['img', '-5G'], OPTIONS).positionals).toEqual(['img', '-5G']);
  });

  it('gives the reserved short flags to the long options that own them', () => {
    expect(parseCommandLine('x', ['-p', '1', '-f'], OPTIONS).values).toMatchObject({ partition: '1', force: true });
  });

  it('rejects an unknown option with our one line and the nearest known option', () => {
    const error = failure(['--partiton', '1']);
    expect(error.code).toBe('E_USAGE');
    expect(error.message).toBe('x: unknown option `--partiton`');
    expect(error.hint).toMatch(/did you mean `--partition`\?/);
  });

  it('says what a reserved short flag means when the command lacks it', () => {
    const error = failure(['-o', 'out']);
    expect(error.message).toBe('x: unknown option `-o`');
    expect(error.hint).toMatch(/`-o` means --output in diskwright/);
  });

  it('rejects a missing value, a value on a boolean and a repeated option', () => {
    expect(failure(['--size']).message).toBe('x: option --size needs a value');
    expect(failure(['-p', '--force']).message).toBe('x: option -p (--partition) needs a value, got the option `--force`');
    expect(failure(['--force=yes']).message).toBe('x: option --force takes no value, got `--force=yes`');
    expect(failure(['--size', '1G', '-s', '2G']).message).toBe('x: -s (--size) was given twice');
  });
});

describe('the short flags of every registered command', () => {
  it('give -p, -o, -f and -h one meaning across all commands', async () => {
    const commands = await collectCommands();
    expect(commands.length).toBeGreaterThan(20);
    const problems: string[] = [];
    for (const command of commands) {
      const options = effectiveOptions(command.options);
      for (const [name, spec] of Object.entries(options)) {
        const owner = spec.short === undefined ? undefined : RESERVED_SHORT_FLAGS[spec.short];
        if (owner !== undefined && owner !== name) problems.push(`${command.name}: -${spec.short} is --${name}, not --${owner}`);
      }
      for (const [short, long] of Object.entries(RESERVED_SHORT_FLAGS)) {
        if (options[long] && options[long].short !== short) problems.push(`${command.name}: --${long} lacks -${short}`);
      }
      const shorts = Object.values(options).flatMap((s) => (s.short === undefined ? [] : [s.short]));
      if (new Set(shorts).size !== shorts.length) problems.push(`${command.name}: a short flag is used twice`);
    }
    expect(problems).toEqual([]);
  });

  it('are documented in each command\'s --help as "-p, --partition"', async () => {
    const missing: string[] = [];
    for (const command of await collectCommands()) {
      for (const [short, long] of Object.entries(RESERVED_SHORT_FLAGS)) {
        if (long === 'help' || !(long in command.options)) continue;
        if (!new RegExp(`-${short}, --${long}\\b`).test(command.help)) missing.push(`${command.name}: -${short}, --${long}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
