import { statSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';

/**
 * What `path` is when opening or reading it would block (a FIFO waits in open(2) for a writer
 * that never comes, deaf to Ctrl-C and SIGTERM; a socket or terminal likewise), in words for a
 * message; undefined for anything else, a missing path included. stat(2) never blocks on them.
 */
export function blockingKind(path: string): string | undefined {
  const info = statSync(path, { throwIfNoEntry: false });
  if (!info) return undefined;
  if (info.isFIFO()) return 'a FIFO';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice()) return 'a character device';
  return undefined;
}

/**
 * Refuses `path` (E_INVALID_ARGUMENT, "NAME is not a regular file (it is a FIFO)") when opening it
 * would block, before anything opens it. `name`: the path as the message says it ("backing file
 * X of Y"); `errorPath`: the file the error is about (default `path`).
 */
export function refuseBlocking(path: string, options: { readonly name?: string; readonly hint: string; readonly errorPath?: string }): void {
  const kind = blockingKind(path);
  if (kind === undefined) return;
  throw new InvalidArgumentError(`${options.name ?? path} is not a regular file (it is ${kind})`, { path: options.errorPath ?? path, hint: options.hint });
}
