import type { DiskFormat } from '../disk/index.js';
import { DiskwrightError } from '../errors.js';
import { parseDumpe2fsHeader } from './dump.js';
import { runToolOnImage } from './in-place.js';
import { imageSpec } from './run.js';

/**
 * The bundled `ext2fs` package is libext2fs 1.44.1; e2fsprogs 1.47 refuses more damaged images
 * (superblock sanity checks added since, descriptor sizes, flex_bg limits). Before a 1.44 write
 * session commits, the filesystem is opened the way e2fsprogs 1.47 opens it: the WASM debugfs's
 * `dw_open_check` (wasm/lib/debugfs-dw-open-check.c) — the open with the superblock checks and
 * checksum, the group descriptors, the bitmaps and their checksums, every descriptor checksum, and
 * `ext2fs_check_desc`'s location rules, which e2fsck applies and dumpe2fs does not. A queued batch
 * of small writes runs it as its first command (src/ext/bulk.ts), so such a session opens the
 * filesystem once. {@link openProblem} states the same rules over `dumpe2fs` output (the
 * differential test in test/oracle/e2fs-open-check.test.ts holds the two together).
 */

/** Groups whose descriptors we check (dumpe2fs prints about 8 lines each; named limit). */
const MAX_GROUPS = 1 << 20;

/** What dumpe2fs (without -h) answered. */
export interface DumpOutput {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface GroupLayout {
  readonly number: number;
  readonly first: number;
  readonly last: number;
  /** Superblock copies, descriptor blocks and reserved GDT blocks ([first, last] block ranges). */
  readonly reserved: [number, number][];
  blockBitmap?: number;
  inodeBitmap?: number;
  inodeTable?: [number, number];
  badChecksum: boolean;
}

function parseGroups(stdout: string): GroupLayout[] {
  const groups: GroupLayout[] = [];
  let current: GroupLayout | undefined;
  for (const line of stdout.split('\n')) {
    const head = /^Group (\d+): \(Blocks (\d+)-(\d+)\)(.*)$/.exec(line);
    if (head) {
      if (groups.length >= MAX_GROUPS) break;
      current = { number: Number(head[1]), first: Number(head[2]), last: Number(head[3]), reserved: [], badChecksum: /\(EXPECTED 0x[0-9a-f]+\)/.test(head[4]!) };
      groups.push(current);
      continue;
    }
    if (!current || !line.startsWith('  ')) continue;
    for (const match of line.matchAll(/(?:superblock|Group descriptors?|Reserved GDT blocks) at (\d+)(?:-(\d+))?/g)) {
      current.reserved.push([Number(match[1]), Number(match[2] ?? match[1])]);
    }
    const bitmap = /^\s+(Block|Inode) bitmap at (\d+)/.exec(line);
    if (bitmap) {
      if (bitmap[1] === 'Block') current.blockBitmap = Number(bitmap[2]);
      else current.inodeBitmap = Number(bitmap[2]);
    }
    const table = /^\s+Inode table at (\d+)-(\d+)/.exec(line);
    if (table) current.inodeTable = [Number(table[1]), Number(table[2])];
  }
  return groups;
}

/**
 * Why e2fsprogs 1.47 would refuse this filesystem, from `dumpe2fs IMAGE` output; undefined when
 * it would open it. Pure: the rules of ext2fs_open2, ext2fs_read_bitmaps (dumpe2fs's exit code and
 * message), the descriptor checksums dumpe2fs marks "EXPECTED", and ext2fs_check_desc (every
 * bitmap and inode table inside its group — anywhere in the filesystem with flex_bg — and no two of
 * them, nor a superblock or descriptor block, sharing a block).
 */
export function openProblem(dump: DumpOutput): string | undefined {
  if (dump.exitCode !== 0) {
    const message = dump.stderr.split('\n').map((l) => l.trim()).find((l) => l !== '' && !/^dumpe2fs 1\.\d/.test(l));
    return (message ?? `exit code ${dump.exitCode}`).replace(/^dumpe2fs: /, '');
  }
  const fields = parseDumpe2fsHeader(dump.stdout);
  const blocks = Number(fields['Block count']);
  const firstData = Number(fields['First block'] ?? '0');
  if (!Number.isSafeInteger(blocks) || blocks <= 0) return 'the superblock has no valid block count';
  const flex = (fields['Filesystem features'] ?? '').split(/\s+/).includes('flex_bg');
  const groups = parseGroups(dump.stdout);
  if (groups.length === 0) return 'dumpe2fs listed no block groups';
  const bad = groups.find((g) => g.badChecksum);
  if (bad) return `group descriptor ${bad.number} checksum does not match`;
  // Every metadata extent, as ext2fs_check_desc marks them in its map: none may share a block.
  const extents: { first: number; last: number; what: string }[] = [];
  for (const group of groups) for (const [first, last] of group.reserved) extents.push({ first, last, what: `superblock or descriptors of group ${group.number}` });
  for (const group of groups) {
    const lo = flex ? firstData : group.first;
    const hi = flex ? blocks - 1 : group.last;
    const table = group.inodeTable;
    const parts: [string, number | undefined, number | undefined][] = [
      ['block bitmap', group.blockBitmap, group.blockBitmap],
      ['inode bitmap', group.inodeBitmap, group.inodeBitmap],
      ['inode table', table?.[0], table?.[1]],
    ];
    for (const [what, first, last] of parts) {
      if (first === undefined || last === undefined || first < lo || last > hi || last < first) {
        return `group descriptor ${group.number}: bad ${what} location ${first === undefined ? '(none)' : first === last ? first : `${first}-${last}`}`;
      }
      extents.push({ first, last, what: `${what} of group ${group.number}` });
    }
  }
  extents.sort((a, b) => a.first - b.first || a.last - b.last);
  for (let i = 1; i < extents.length; i += 1) {
    const previous = extents[i - 1]!;
    const next = extents[i]!;
    if (next.first <= previous.last) return `${next.what} overlaps ${previous.what} at block ${next.first}`;
  }
  return undefined;
}

export interface OpenCheckOptions {
  readonly offset?: number | bigint;
  readonly signal?: AbortSignal;
  /** The image's format (`--format`). Default: diskwright's record, else the qcow2 magic. */
  readonly format?: DiskFormat;
  /** Initial WebAssembly heap of the debugfs run (bytes; default the runner's). */
  readonly initialMemory?: number;
}

/** The debugfs command that refuses what e2fsprogs 1.47 would not open (exits 1 at once). */
export const OPEN_CHECK_COMMAND = 'dw_open_check';

/** What a debugfs run that began with {@link OPEN_CHECK_COMMAND} says about the open. */
export type OpenVerdict = { readonly ok: true } | { readonly ok: false; readonly problem: string };

/**
 * The verdict of `dw_open_check` in a debugfs run's output; undefined when the command gave none
 * (it did not run). When debugfs could not open the filesystem (or read its bitmaps), the problem
 * is debugfs's own message for that, without the program name.
 */
export function openVerdict(run: DumpOutput): OpenVerdict | undefined {
  const lines = run.stderr.split('\n').map((l) => l.trim());
  const refused = lines.findIndex((l) => l.startsWith('dw_open_check: refused: '));
  if (refused >= 0) {
    const reason = lines[refused]!.slice('dw_open_check: refused: '.length);
    if (reason !== 'the filesystem is not open') return { ok: false, problem: reason };
    const why = lines.slice(0, refused).find((l) => l !== '' && !/^debugfs \d/.test(l) && !/^Checksum errors in superblock!/.test(l));
    return { ok: false, problem: (why ?? reason).replace(/^debugfs: /, '') };
  }
  return /^dw_open_check ok$/m.test(run.stdout) ? { ok: true } : undefined;
}

/** Errors made by {@link openRefusal} (a queued batch must not replay them call by call). */
const refusals = new WeakSet<object>();

/** The one-line E_EXTFS refusal of a filesystem e2fsprogs 1.47 would not open. */
export function openRefusal(image: string, offset: number | bigint | undefined, problem: string): DiskwrightError {
  const error = new DiskwrightError('E_EXTFS', `refusing to write ${image}${offset ? ` (filesystem at offset ${offset})` : ''}: e2fsprogs 1.47 would not open it (${problem})`, {
    path: image,
    ...(offset !== undefined ? { offset } : {}),
    hint: `repair it first: \`diskwright fsck ${image} --fix\`${offset ? ' with the same --partition/--offset' : ''}`,
  });
  refusals.add(error);
  return error;
}

/** True for an error made by {@link openRefusal}. */
export function isOpenRefusal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && refusals.has(error);
}

/**
 * Refuses (E_EXTFS, hint: `diskwright fsck IMAGE --fix`) a filesystem that e2fsprogs 1.47 would
 * refuse to open; resolves when it would open it. Read-only: `debugfs -R dw_open_check` (one
 * open; a full dumpe2fs listing took ~4× as long).
 */
export async function assertOpenableByE2fsprogs(image: string, options: OpenCheckOptions = {}): Promise<void> {
  const result = await runToolOnImage('debugfs', ['-R', OPEN_CHECK_COMMAND, imageSpec(image, options.offset)], image, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.format ? { format: options.format } : {}),
    ...(options.initialMemory !== undefined ? { initialMemory: options.initialMemory } : {}),
  });
  const verdict = openVerdict(result);
  if (verdict?.ok === true && result.exitCode === 0) return;
  throw openRefusal(image, options.offset, verdict?.ok === false ? verdict.problem : `the open check gave no verdict (exit code ${result.exitCode})`);
}

/** A check started early that a writer awaits before its first write reaches the image. */
export interface PendingOpenCheck {
  /** Resolves when e2fsprogs 1.47 would open the filesystem; rejects with its refusal. */
  readonly done: () => Promise<void>;
}

/**
 * Starts {@link assertOpenableByE2fsprogs} in a worker now (so it overlaps the caller's own work)
 * without an unhandled rejection if the caller fails before awaiting it.
 */
export function startOpenCheck(image: string, options: OpenCheckOptions = {}): PendingOpenCheck {
  const outcome = assertOpenableByE2fsprogs(image, options).then(
    () => undefined,
    (error: unknown) => ({ error }),
  );
  return {
    done: async () => {
      const failed = await outcome;
      if (failed) throw failed.error;
    },
  };
}
