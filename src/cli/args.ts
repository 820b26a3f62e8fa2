import { DiskwrightError } from '../errors.js';
import type { OptionSpec, OptionSpecs, ParsedArgs } from './command.js';

/**
 * Short flags with one meaning across every command. A command that has the long option gets the
 * short one for free; no command may use these letters for anything else (a unit test walks every
 * registered command).
 */
export const RESERVED_SHORT_FLAGS: Readonly<Record<string, string>> = {
  p: 'partition',
  o: 'output',
  f: 'force',
  h: 'help',
};

/** Options every command accepts. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  /** Queue behind another diskwright process holding the image instead of failing (src/cli/image.ts). */
  wait: { type: 'boolean' },
};

/** The command's options plus the global ones, with the reserved short flags filled in. */
export function effectiveOptions(options: OptionSpecs): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, ...options };
  for (const [short, long] of Object.entries(RESERVED_SHORT_FLAGS)) {
    const spec = out[long];
    if (spec && spec.short === undefined && !Object.values(out).some((s) => s.short === short)) out[long] = { ...spec, short };
  }
  return out;
}

function usageError(command: string, message: string, hint?: string): DiskwrightError {
  return new DiskwrightError('E_USAGE', `${command}: ${message}`, { hint: hint ?? `run \`diskwright ${command} --help\`` });
}

/** Edit distance, for "did you mean" (options are short; quadratic is fine). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

function suggestion(command: string, name: string, options: Record<string, OptionSpec>): string {
  const names = Object.keys(options);
  const best = names
    .map((n) => ({ n, d: n.startsWith(name) || name.startsWith(n) ? 0 : distance(name, n) }))
    .sort((x, y) => x.d - y.d)[0];
  const mean = best && best.d <= Math.max(1, Math.floor(name.length / 3)) ? `did you mean \`--${best.n}\`? ` : '';
  return `${mean}run \`diskwright ${command} --help\` for its options`;
}

/**
 * Parses `argv` against a command's options — our own parser, so every mistake gets our one-line
 * message: `--size -5G` gives the value `-5G` to `--size` (its validation then names the problem);
 * unknown options suggest the nearest known one; `--` ends the options.
 */
export function parseCommandLine(command: string, argv: readonly string[], commandOptions: OptionSpecs): ParsedArgs {
  const options = effectiveOptions(commandOptions);
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(options)) if (spec.short !== undefined) byShort.set(spec.short, name);
  const values: Record<string, string | boolean | (string | boolean)[]> = {};
  const positionals: string[] = [];
  const set = (name: string, value: string | boolean, shown: string): void => {
    const spec = options[name]!;
    if (spec.multiple) {
      const list = (values[name] as (string | boolean)[] | undefined) ?? [];
      values[name] = [...list, value];
      return;
    }
    if (name in values && spec.type === 'string') throw usageError(command, `${shown} was given twice`, `give ${shown} once`);
    values[name] = value;
  };
  const takeValue = (name: string, shown: string, index: number): string => {
    const value = argv[index];
    if (value === undefined) throw usageError(command, `option ${shown} needs a value`);
    // A known option where a value belongs is a forgotten value, not a value (`-p --force`).
    const looksLikeOption = /^--[a-z]/.test(value) && value.slice(2).split('=')[0]! in options;
    if (looksLikeOption) throw usageError(command, `option ${shown} needs a value, got the option \`${value}\``, `e.g. ${shown} ${valueExample(name)}`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const shown = `--${name}`;
      const spec = options[name];
      if (!spec) throw usageError(command, `unknown option \`${shown}\``, suggestion(command, name, options));
      if (spec.type === 'boolean') {
        if (eq !== -1) throw usageError(command, `option ${shown} takes no value, got \`${arg}\``, `write ${shown} alone`);
        set(name, true, shown);
      } else if (eq !== -1) {
        set(name, arg.slice(eq + 1), shown);
      } else {
        set(name, takeValue(name, shown, ++i), shown);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      // -l, -lr (booleans bundled), -p1 or -p 1 (a value).
      for (let k = 1; k < arg.length; k++) {
        const letter = arg[k]!;
        const name = byShort.get(letter);
        if (name === undefined) {
          const reserved = RESERVED_SHORT_FLAGS[letter];
          const hint = reserved
            ? `\`-${letter}\` means --${reserved} in diskwright, and ${command} has no --${reserved}; run \`diskwright ${command} --help\``
            : `run \`diskwright ${command} --help\` for its options`;
          throw usageError(command, `unknown option \`-${letter}\``, hint);
        }
        const shown = `-${letter} (--${name})`;
        if (options[name]!.type === 'boolean') {
          set(name, true, shown);
          continue;
        }
        const rest = arg.slice(k + 1);
        set(name, rest !== '' ? rest.replace(/^=/, '') : takeValue(name, shown, ++i), shown);
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  for (const [name, spec] of Object.entries(options)) {
    if (!(name in values) && spec.default !== undefined) values[name] = spec.default as string | boolean;
  }
  return { positionals, values };
}

function valueExample(name: string): string {
  if (name === 'partition') return '1';
  if (name === 'output') return 'OUT';
  if (/size|disk/.test(name)) return '10G';
  return name.toUpperCase();
}
