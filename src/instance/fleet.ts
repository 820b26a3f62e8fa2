import { dirname, resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { parseRequestObject, readJsonFile } from './config.js';
import { CONFIG_KEYS, REQUEST_KEYS, type InstanceRequest } from './request.js';

/** Most instances one fleet file may describe. */
export const MAX_FLEET_SIZE = 1024;

/** A fleet: shared defaults and one request per VM (defaults already merged in). */
export interface Fleet {
  readonly defaults: InstanceRequest;
  readonly instances: readonly InstanceRequest[];
}

/**
 * Parses a fleet description: `{ "defaults": {…}, "instances": [{ "ip": …, "host": … }, …] }`
 * or a bare array of instances. Keys are those of a config file plus `ip`, `host`, `mac`.
 */
export function parseFleet(json: unknown, source: string, baseDir: string): Fleet {
  let defaults: InstanceRequest = {};
  let list: unknown;
  if (Array.isArray(json)) {
    list = json;
  } else if (typeof json === 'object' && json !== null) {
    const { defaults: rawDefaults, instances, ...rest } = json as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new InvalidArgumentError(`${source}: unknown key \`${unknown[0]}\` (expected defaults and instances)`);
    if (rawDefaults !== undefined) defaults = parseRequestObject(rawDefaults, `${source} defaults`, CONFIG_KEYS, baseDir);
    list = instances;
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidArgumentError(`${source}: expected a non-empty \`instances\` array`);
  }
  if (list.length > MAX_FLEET_SIZE) throw new InvalidArgumentError(`${source}: ${list.length} instances exceed the limit of ${MAX_FLEET_SIZE}`);
  const instances = list.map((entry, i) => parseRequestObject(entry, `${source} instances[${i}]`, REQUEST_KEYS, baseDir));
  return { defaults, instances };
}

/** Reads and parses a fleet file. */
export async function readFleet(path: string): Promise<Fleet> {
  const absolute = resolve(path);
  const json = await readJsonFile(absolute);
  if (json === undefined) throw new InvalidArgumentError(`fleet file ${absolute} does not exist`, { path: absolute });
  return parseFleet(json, absolute, dirname(absolute));
}
