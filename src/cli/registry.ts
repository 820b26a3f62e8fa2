import { readFileSync } from 'node:fs';
import type { Command, OptionSpecs } from './command.js';
import { commandModules } from './commands/index.js';

/** What the CLI knows about a command without importing its module. */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  readonly options: OptionSpecs;
  /** The command file (see commands/index.ts). */
  readonly file: string;
}

const MANIFEST_URL = new URL('./commands/manifest.json', import.meta.url);

/** Imports every command module (the build does this once to write the manifest). */
export async function collectCommands(): Promise<CommandEntry[]> {
  const entries: CommandEntry[] = [];
  for (const module of commandModules) {
    const { commands } = await module.load();
    for (const c of commands) entries.push({ name: c.name, summary: c.summary, help: c.help, options: c.options, file: module.file });
  }
  return entries;
}

let cached: readonly CommandEntry[] | undefined;

/**
 * Every command, from the manifest `npm run build` writes beside the command files; without one
 * (tests running the TypeScript sources) from the modules themselves.
 */
export async function listCommands(): Promise<readonly CommandEntry[]> {
  if (cached) return cached;
  let text: string | undefined;
  try {
    text = readFileSync(MANIFEST_URL, 'utf8');
  } catch {
    text = undefined;
  }
  cached = text === undefined ? await collectCommands() : (JSON.parse(text) as CommandEntry[]);
  return cached;
}

/** Imports the module of `entry` and returns its command. */
export async function loadCommand(entry: CommandEntry): Promise<Command> {
  const module = commandModules.find((m) => m.file === entry.file);
  const command = module && (await module.load()).commands.find((c) => c.name === entry.name);
  if (!command) throw new Error(`command ${entry.name} not found in ${entry.file} (stale manifest? run npm run build)`);
  return command;
}
