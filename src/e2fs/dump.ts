import { readFile } from 'node:fs/promises';
import type { DiskFormat } from '../disk/index.js';
import { DiskwrightError } from '../errors.js';
import { runToolOnImage } from './in-place.js';
import { explainMissingFilesystem } from './no-filesystem.js';
import { imageSpec } from './run.js';

export interface DumpHeaderOptions {
  readonly offset?: number | bigint;
  readonly signal?: AbortSignal;
  /** The image's format (`--format`). Default: diskwright's record, else the qcow2 magic. */
  readonly format?: DiskFormat;
  /** The partition `offset` belongs to, for messages. */
  readonly partition?: number;
}

/** Longest header line accepted from dumpe2fs output (a named limit on tool output). */
const MAX_HEADER_LINES = 500;

/**
 * Parses `dumpe2fs -h` output ("Name:   value" lines) into a record keyed by the names dumpe2fs
 * prints ("Block count", "Filesystem features", "Journal size", …). Later duplicates are ignored.
 */
export function parseDumpe2fsHeader(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const lines = text.split('\n').slice(0, MAX_HEADER_LINES);
  for (const line of lines) {
    const match = /^([A-Za-z][^:]*?):\s*(.*)$/.exec(line.trimEnd());
    if (!match) continue;
    const key = match[1]!.trim();
    if (!(key in fields)) fields[key] = match[2]!;
  }
  return fields;
}

/**
 * Reads the superblock (and journal header) of an ext2/3/4 filesystem with the WebAssembly
 * dumpe2fs -h and returns its fields as data. A journal needing recovery shows up as
 * `needs_recovery` in "Filesystem features".
 */
export async function dumpFilesystemHeader(image: string, options: DumpHeaderOptions = {}): Promise<Record<string, string>> {
  // On this thread: -h reads the superblock and the journal's, bounded work a worker start outweighs.
  const result = await runToolOnImage('dumpe2fs', ['-h', imageSpec(image, options.offset)], image, { inThread: true, ...(options.signal ? { signal: options.signal } : {}), ...(options.format ? { format: options.format } : {}) });
  const fields = parseDumpe2fsHeader(result.stdout);
  if (result.exitCode !== 0 || fields['Filesystem magic number'] === undefined) {
    // Said in the user's terms (too small, no magic, what is there instead) unless the magic is there.
    const explained = explainMissingFilesystem(image, Number(options.offset ?? 0), { ...(options.format ? { format: options.format } : {}), ...(options.partition !== undefined ? { partition: options.partition } : {}) });
    if (explained) throw explained;
    const message = result.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('dumpe2fs 1.')).join('; ');
    const noFs = /Bad magic number|Can't find valid filesystem superblock|superblock/i.test(message);
    throw new DiskwrightError(noFs ? 'E_BAD_SIGNATURE' : 'E_EXTFS', `no readable ext2/3/4 filesystem in ${image}${options.offset ? ` at offset ${options.offset}` : ''}: ${message || `exit code ${result.exitCode}`}`, {
      path: image,
      ...(options.offset !== undefined ? { offset: options.offset } : {}),
      hint: noFs ? 'check the image path and --partition (diskwright partitions IMAGE lists them)' : 'run diskwright fsck on the image',
    });
  }
  return withOwnerNames(fields);
}

/** Size limit for /etc/passwd and /etc/group read to name the reserved-blocks owner. */
const MAX_ACCOUNT_FILE_BYTES = 4 << 20;

/**
 * The WebAssembly libc has no user database, so dumpe2fs prints "(user unknown)"; fill in the
 * names from the host's /etc/passwd and /etc/group as host dumpe2fs would.
 */
async function withOwnerNames(fields: Record<string, string>): Promise<Record<string, string>> {
  const fill = async (key: string, file: string, word: string): Promise<void> => {
    const match = new RegExp(`^(\\d+) \\(${word} unknown\\)$`).exec(fields[key] ?? '');
    if (!match) return;
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.length > MAX_ACCOUNT_FILE_BYTES) return;
    const entry = text.split('\n').map((line) => line.split(':')).find((parts) => parts[2] === match[1] && parts[0]);
    if (entry) fields[key] = `${match[1]} (${word} ${entry[0]})`;
  };
  await fill('Reserved blocks uid', '/etc/passwd', 'user');
  await fill('Reserved blocks gid', '/etc/group', 'group');
  return fields;
}

/** True when the header says the journal must be replayed before the filesystem is written. */
export function headerNeedsRecovery(fields: Readonly<Record<string, string>>): boolean {
  return (fields['Filesystem features'] ?? '').split(/\s+/).includes('needs_recovery');
}
