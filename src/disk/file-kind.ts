import { statSync } from 'node:fs';

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
