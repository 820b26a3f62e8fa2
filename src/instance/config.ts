import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { CONFIG_KEYS, REQUEST_KEYS, type InstanceRequest } from './request.js';

/** Largest config or fleet file we read (they are hand-written JSON). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Where config files are looked up, lowest precedence first. */
export function configPaths(env: NodeJS.ProcessEnv, cwd: string): { xdg: string; local: string } {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME ?? homedir(), '.config');
  return { xdg: join(base, 'diskwright', 'config.json'), local: resolve(cwd, 'diskwright.config.json') };
}

/**
 * Checks a parsed JSON object against the allowed keys and value types; relative paths are
 * resolved against `baseDir` (the file's directory) so a config means the same from anywhere.
 */
export function parseRequestObject(value: unknown, source: string, allowed: readonly string[], baseDir: string): InstanceRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${source}: expected a JSON object`);
  }
  const out: Record<string, string | number | boolean> = {};
  for (const [key, raw] of Object.entries(value)) {
    if (!allowed.includes(key)) {
      throw new InvalidArgumentError(`${source}: unknown key \`${key}\``, { hint: `allowed keys: ${allowed.join(', ')}` });
    }
    const numeric = key === 'ram' || key === 'cpus' || key === 'disk';
    const boolean = key === 'standalone';
    if (!(typeof raw === 'string' || (numeric && typeof raw === 'number') || (boolean && typeof raw === 'boolean'))) {
      throw new InvalidArgumentError(`${source}: \`${key}\` must be a ${numeric ? 'number or string' : boolean ? 'boolean' : 'string'}, got ${JSON.stringify(raw)}`);
    }
    const isPath = ['imagesDir', 'template', 'kernel', 'initrd', 'serialLog', 'sshKey', 'rootPasswordFile', 'firstboot'].includes(key);
    out[key] = isPath && typeof raw === 'string' && raw.length > 0 ? resolve(baseDir, raw) : raw;
  }
  return out as InstanceRequest;
}

/** Reads a JSON file with a size limit; `undefined` when it does not exist. */
export async function readJsonFile(path: string): Promise<unknown | undefined> {
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_CONFIG_BYTES) throw new DiskwrightError('E_LIMIT', `${path} is larger than ${MAX_CONFIG_BYTES} bytes`, { path });
    text = bytes.toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof DiskwrightError) throw error;
    throw new DiskwrightError('E_IO', `cannot read ${path}: ${(error as Error).message}`, { path, cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidArgumentError(`${path} is not valid JSON: ${(error as Error).message}`, { path, cause: error });
  }
}

export interface LoadedConfig {
  /** Merged values: ./diskwright.config.json over the XDG file. */
  readonly values: InstanceRequest;
  /** Files that were found, lowest precedence first. */
  readonly sources: readonly string[];
}

/**
 * Loads the instance defaults: `$XDG_CONFIG_HOME/diskwright/config.json` (or `~/.config/…`), then
 * `./diskwright.config.json` over it. Flags override both; built-in defaults are the article's.
 */
export async function loadConfig(env: NodeJS.ProcessEnv, cwd: string): Promise<LoadedConfig> {
  const paths = configPaths(env, cwd);
  const sources: string[] = [];
  let values: InstanceRequest = {};
  for (const path of paths.xdg === paths.local ? [paths.local] : [paths.xdg, paths.local]) {
    const json = await readJsonFile(path);
    if (json === undefined) continue;
    values = { ...values, ...parseRequestObject(json, path, CONFIG_KEYS, resolve(path, '..')) };
    sources.push(path);
  }
  return { values, sources };
}

/** Merges request layers: later layers win, `undefined` never overrides. */
export function mergeRequests(...layers: readonly InstanceRequest[]): InstanceRequest {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) if (value !== undefined) out[key] = value;
  }
  return out as InstanceRequest;
}

export { CONFIG_KEYS, REQUEST_KEYS };
