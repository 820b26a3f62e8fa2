import { stat as hostStat } from 'node:fs/promises';
// Direct area imports, not the library barrel: these commands must start fast (bench/cli-start.mjs).
import { DiskwrightError, InvalidArgumentError } from '../../errors.js';
import { parseSize } from '../../bytes/index.js';
import { withFilesystem, type FileStat, type FilesystemSession, type OpenFilesystemOptions } from '../../ext/index.js';
import { flag, printJson, stringOption, type Command, type CommandContext, type OptionSpecs, type ParsedArgs } from '../command.js';
import { FORMAT_OPTION, imageFormat, useImage } from '../image.js';
import { createProgress, createStepReporter, formatSeconds, noteLeaves, noteStep } from '../progress.js';
import { parseCommandLine } from '../args.js';
import type { Progress } from '../../io/progress.js';
import { readFile } from 'node:fs/promises';

const LOCATION_OPTIONS = {
  partition: { type: 'string' },
  offset: { type: 'string' },
  ...FORMAT_OPTION,
} as const;
const WRITE_OPTIONS = { ...LOCATION_OPTIONS, 'replay-journal': { type: 'boolean' } } as const;
const OWNER_OPTIONS = { uid: { type: 'string' }, gid: { type: 'string' } } as const;

const LOCATION_HELP = `  -p, --partition N the filesystem is partition N of a disk image (MBR or GPT)
  --offset BYTES    the filesystem starts at this byte offset (e.g. 1048576 or 2048s)
  --format F        IMAGE is raw or qcow2 (default: diskwright's record on it, else the qcow2
                    magic; a probed qcow2's backing file is followed only with --format qcow2)`;
const REPLAY_HELP = `  --replay-journal  replay a journal that needs recovery instead of refusing to write`;
const JSON_HELP = `  --json            print what was done as one JSON object (docs/json.md)`;

function usageError(command: string, message: string): DiskwrightError {
  return new DiskwrightError('E_USAGE', `fs ${command}: ${message}`, { hint: `run \`diskwright fs ${command} --help\`` });
}

function positionals(args: ParsedArgs, command: string, min: number, max: number, names: string): string[] {
  const list = [...args.positionals];
  if (list.length < min || list.length > max) throw usageError(command, `expected ${names}`);
  return list;
}

function openOptions(args: ParsedArgs, ctx: CommandContext, write: boolean): OpenFilesystemOptions {
  const partition = stringOption(args, 'partition');
  const offset = stringOption(args, 'offset');
  if (partition !== undefined && !/^[1-9]\d{0,3}$/.test(partition)) {
    throw new InvalidArgumentError(`Expected \`--partition\` to be a partition number, got \`${partition}\``);
  }
  return {
    write,
    signal: ctx.signal,
    ...(partition === undefined ? {} : { partition: Number(partition) }),
    ...(offset === undefined ? {} : { offset: parseSize(offset, '--offset') }),
    ...(flag(args, 'replay-journal') ? { replayJournal: true } : {}),
    ...imageFormat(args),
  };
}

function parseMode(text: string | undefined, option = 'mode'): number | undefined {
  if (text === undefined) return undefined;
  if (!/^0?[0-7]{1,4}$/.test(text)) throw new InvalidArgumentError(`Expected \`--${option}\` to be octal permission bits like 0644, got \`${text}\``);
  return parseInt(text, 8);
}

function parseId(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) throw new InvalidArgumentError(`Expected \`${option}\` to be a numeric id 0..4294967295, got \`${text}\``);
  return Number(text);
}

function owners(args: ParsedArgs): { uid?: number; gid?: number } {
  const uid = parseId(stringOption(args, 'uid'), '--uid');
  const gid = parseId(stringOption(args, 'gid'), '--gid');
  return { ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) };
}

const TYPE_CHAR: Record<FileStat['kind'], string> = { file: '-', directory: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's' };

/** `drwxr-xr-x` style permissions, as ls prints them. */
export function modeString(entry: Pick<FileStat, 'kind' | 'mode'>): string {
  const m = entry.mode;
  const triplet = (shift: number, special: number, char: string): string => {
    const r = m & (4 << shift) ? 'r' : '-';
    const w = m & (2 << shift) ? 'w' : '-';
    const x = m & (1 << shift);
    const s = m & special;
    return r + w + (s ? (x ? char : char.toUpperCase()) : x ? 'x' : '-');
  };
  return TYPE_CHAR[entry.kind] + triplet(6, 0o4000, 's') + triplet(3, 0o2000, 's') + triplet(0, 0o1000, 't');
}

function statJson(entry: FileStat): Record<string, unknown> {
  return {
    ...entry,
    mode: `0${entry.mode.toString(8).padStart(3, '0')}`,
    atime: entry.atime.toISOString(),
    mtime: entry.mtime.toISOString(),
    ctime: entry.ctime.toISOString(),
  };
}

function longLine(entry: FileStat): string {
  const link = entry.linkTarget === undefined ? '' : ` -> ${entry.linkTarget}`;
  const when = entry.mtime.toISOString().replace('T', ' ').slice(0, 16);
  return `${modeString(entry)} ${String(entry.nlink).padStart(3)} ${String(entry.uid).padStart(5)} ${String(entry.gid).padStart(5)} ${String(entry.size).padStart(10)} ${when} ${entry.name}${link}`;
}

/**
 * One filesystem session for a command. Write commands are all-or-nothing, so their small puts and
 * mkdirs are queued into one batch (queueWrites; an error then surfaces at the flush, with the same
 * message, and nothing is written) — except `fs batch`, which names the failing line.
 */
async function session<T>(image: string, args: ParsedArgs, ctx: CommandContext, write: boolean, fn: (fs: FilesystemSession) => Promise<T>, beforeCommit?: () => void, queueWrites = true): Promise<T> {
  if (!write) return useImage(args, ctx, image, 'read', () => withFilesystem(image, openOptions(args, ctx, false), fn));
  // Writing the staged changes into the image is a step of its own (seconds for a large put).
  const report = createStepReporter(ctx);
  let committing: number | undefined;
  const value = await useImage(args, ctx, image, 'write', () =>
    withFilesystem(image, { ...openOptions(args, ctx, true), queueWrites, onCommit: () => {
      beforeCommit?.();
      committing = performance.now();
      report({ step: 'commit', phase: 'start' });
    } }, fn),
  );
  if (committing !== undefined) report({ step: 'commit', phase: 'done', seconds: (performance.now() - committing) / 1000 });
  return value;
}


function parseOwnerSpec(spec: string): { uid: number; gid: number | undefined } {
  const [uidText, gidText] = spec.split(':');
  const uid = parseId(uidText, 'UID')!;
  const gid = gidText === undefined ? undefined : parseId(gidText, 'GID')!;
  return { uid, gid };
}

type PutSummary = { files: number; directories: number; symlinks: number; bytes: number; skipped: readonly string[] };

/** Checks a put's host source and options now; the returned function does the copy in a session. */
async function preparePut(source: string, dest: string, args: ParsedArgs): Promise<(fs: FilesystemSession, onProgress?: (p: Progress) => void) => Promise<PutSummary>> {
  const info = await hostStat(source).catch((error: unknown) => {
    throw new DiskwrightError('E_NOT_FOUND', `host path ${source} not found`, { path: source, cause: error });
  });
  const mode = parseMode(stringOption(args, 'mode'));
  const own = owners(args);
  return async (fs, onProgress) => {
    const progress = onProgress ? { onProgress } : {};
    if (info.isDirectory()) return fs.copyIn(source, dest, { ...own, ...progress });
    await fs.putFile(source, dest, { ...own, ...(mode === undefined ? {} : { mode }), parents: flag(args, 'parents'), ...progress });
    return { files: 1, directories: 0, symlinks: 0, bytes: info.size, skipped: [] };
  };
}

/**
 * The write operations, shared by their own commands and by `fs batch`: `prepare` validates the
 * operands and options (before any image is opened) and returns the change to make in a session.
 */
interface BatchOp {
  readonly command: string;
  /** The operation's own options (its command adds where the image is: WRITE_OPTIONS). */
  readonly options: OptionSpecs;
  readonly operands: string;
  readonly min: number;
  readonly max: number;
  prepare(operands: readonly string[], args: ParsedArgs): Promise<(fs: FilesystemSession) => Promise<unknown>>;
}

const BATCH_OPS: Readonly<Record<'put' | 'rm' | 'mkdir' | 'ln' | 'chmod' | 'chown', BatchOp>> = {
  put: {
    command: 'fs put', operands: 'SOURCE DEST', min: 2, max: 2,
    options: { ...OWNER_OPTIONS, mode: { type: 'string' }, parents: { type: 'boolean' } },
    async prepare([source, dest], args) {
      const apply = await preparePut(source!, dest!, args);
      return (fs) => apply(fs);
    },
  },
  rm: {
    command: 'fs rm', operands: 'PATH...', min: 1, max: 10_000,
    options: { recursive: { type: 'boolean', short: 'r' }, force: { type: 'boolean', short: 'f' } },
    async prepare(paths, args) {
      return async (fs) => {
        for (const path of paths) await fs.rm(path, { recursive: flag(args, 'recursive'), force: flag(args, 'force') });
      };
    },
  },
  mkdir: {
    command: 'fs mkdir', operands: 'PATH...', min: 1, max: 10_000,
    options: { ...OWNER_OPTIONS, parents: { type: 'boolean' }, mode: { type: 'string' } },
    async prepare(paths, args) {
      const mode = parseMode(stringOption(args, 'mode'));
      const own = owners(args);
      return async (fs) => {
        for (const path of paths) await fs.mkdir(path, { parents: flag(args, 'parents'), ...own, ...(mode === undefined ? {} : { mode }) });
      };
    },
  },
  ln: {
    command: 'fs ln', operands: 'TARGET LINKPATH', min: 2, max: 2,
    options: { ...OWNER_OPTIONS, symbolic: { type: 'boolean', short: 's' } },
    async prepare([target, link], args) {
      const own = owners(args);
      return (fs) => fs.symlink(target!, link!, own);
    },
  },
  chmod: {
    command: 'fs chmod', operands: 'MODE PATH...', min: 2, max: 10_000,
    options: {},
    async prepare([modeText, ...paths], _args) {
      const mode = parseMode(modeText, 'MODE')!;
      return async (fs) => {
        for (const path of paths) await fs.chmod(path, mode);
      };
    },
  },
  chown: {
    command: 'fs chown', operands: 'UID[:GID] PATH...', min: 2, max: 10_000,
    options: {},
    async prepare([spec, ...paths], _args) {
      const { uid, gid } = parseOwnerSpec(spec!);
      return async (fs) => {
        for (const path of paths) await fs.chown(path, uid, gid ?? (await fs.stat(path)).gid);
      };
    },
  },
};

const ls: Command = {
  name: 'fs ls',
  summary: 'list a directory inside an ext2/3/4 image (modes, owners, sizes, symlink targets)',
  help: `Usage: diskwright fs ls IMAGE [PATH] [--partition N | --offset BYTES] [-l] [--json]

Lists PATH (default /) inside the filesystem without mounting it. A file lists itself.
  -l, --long        mode, links, uid, gid, size, mtime, name -> symlink target
${LOCATION_HELP}
  --json            an array of entries (path, kind, mode, uid, gid, size, times, linkTarget)

Example:
  diskwright fs ls disk.img /etc --partition 1 -l`,
  options: { ...LOCATION_OPTIONS, long: { type: 'boolean', short: 'l' } },
  async run(args, ctx) {
    const [image, path = '/'] = positionals(args, 'ls', 1, 2, 'IMAGE [PATH]');
    const entries = await session(image!, args, ctx, false, async (fs) => {
      const entry = await fs.lstat(path);
      return entry.kind === 'directory' ? fs.readdir(path) : [entry];
    });
    if (ctx.json) printJson(ctx, entries.map(statJson));
    else if (flag(args, 'long')) ctx.stdout.write(entries.map((e) => `${longLine(e)}\n`).join(''));
    else ctx.stdout.write(entries.map((e) => `${e.name}${e.kind === 'directory' ? '/' : ''}\n`).join(''));
    return 0;
  },
};

/** Largest file `fs cat --json` embeds (named limit: the base64 string and its JSON copy are held in memory). */
const MAX_JSON_CAT_BYTES = 64 * 1024 * 1024;

const cat: Command = {
  name: 'fs cat',
  summary: 'write a file from inside an ext2/3/4 image to stdout (raw bytes)',
  help: `Usage: diskwright fs cat IMAGE PATH [--partition N | --offset BYTES]

Writes the bytes of PATH (symlinks followed inside the image) to stdout.
${LOCATION_HELP}
  --json            print {image, path, size, encoding: "base64", content} instead

Example:
  diskwright fs cat disk.img /etc/hostname --partition 1`,
  options: { ...LOCATION_OPTIONS },
  async run(args, ctx) {
    const [image, path] = positionals(args, 'cat', 2, 2, 'IMAGE PATH');
    // Streamed: a file of any size goes out in 1 MiB chunks, waiting for stdout to drain.
    if (ctx.json) {
      const bytes = await session(image!, args, ctx, false, async (fs) => {
        // base64 in a JSON string: past a few hundred MiB Node cannot build the string at all.
        const { size } = await fs.stat(path!);
        if (size > MAX_JSON_CAT_BYTES) {
          throw new DiskwrightError('E_LIMIT', `${path} is ${size} bytes; fs cat --json prints at most ${MAX_JSON_CAT_BYTES} (base64 in one JSON string)`, {
            path: path!,
            hint: 'drop --json to stream the raw bytes, or copy it out with `diskwright fs get`',
          });
        }
        return fs.readFile(path!);
      });
      printJson(ctx, { image, path, size: bytes.length, encoding: 'base64', content: Buffer.from(bytes).toString('base64') });
      return 0;
    }
    noteStep(ctx, `cat ${path}`);
    const out = (chunk: Uint8Array): Promise<void> => new Promise((resolve, reject) => ctx.stdout.write(chunk, (error) => (error ? reject(error) : resolve())));
    await session(image!, args, ctx, false, async (fs) => (fs.readFileChunks ? fs.readFileChunks(path!, out) : out(await fs.readFile(path!))));
    return 0;
  },
};

const put: Command = {
  name: 'fs put',
  summary: 'copy a host file or directory tree into an ext2/3/4 image',
  help: `Usage: diskwright fs put IMAGE SOURCE DEST [--mode 0644] [--uid N] [--gid N] [--parents] [--partition N]

Copies the host file SOURCE to DEST inside the image (created or replaced). When SOURCE is a
directory its contents are copied into DEST (created like mkdir -p): files, directories and symlinks
with their permission bits; owners from --uid/--gid (default 0:0). Nothing is written to the image
unless the whole copy succeeds.
  --mode OCTAL      permission bits for a single file (default: the host file's)
  --uid N, --gid N  numeric owner inside the image
  --parents         create DEST's parent directories as needed (long only: -p is --partition)
${LOCATION_HELP}
${REPLAY_HELP}
  --json            print a summary object

Examples:
  diskwright fs put disk.img ./motd /etc/motd --partition 1 --mode 0644
  diskwright fs put root.img ./overlay/ /opt/app --uid 1000 --gid 1000`,
  options: { ...WRITE_OPTIONS, ...BATCH_OPS.put.options },
  async run(args, ctx) {
    const [image, source, dest] = positionals(args, 'put', 3, 3, 'IMAGE SOURCE DEST');
    const apply = await preparePut(source!, dest!, args);
    const progress = createProgress(ctx, `put ${dest}`);
    const summary = await session(image!, args, ctx, true, (fs) => apply(fs, (p) => progress.update(p)), () => progress.done()).finally(() => progress.done());
    if (ctx.json) printJson(ctx, { image, dest, ...summary });
    else {
      ctx.stdout.write(`copied ${summary.files} file(s), ${summary.directories} director(ies), ${summary.symlinks} symlink(s), ${summary.bytes} bytes into ${dest} in ${formatSeconds(progress.seconds())}\n`);
      for (const skipped of summary.skipped) ctx.stderr.write(`diskwright: skipped ${skipped}\n`);
    }
    return 0;
  },
};

const get: Command = {
  name: 'fs get',
  summary: 'copy a file or directory tree out of an ext2/3/4 image',
  help: `Usage: diskwright fs get IMAGE PATH HOSTDEST [--force] [--partition N | --offset BYTES]

Copies PATH (a file, symlink or directory tree) out of the image to HOSTDEST, atomically (a temp
beside it, renamed when complete). Permission bits and access/modification times are kept (as
debugfs rdump keeps them); owners are not.
  -f, --force       replace an existing HOSTDEST file
${LOCATION_HELP}
  --json            print a summary object

Example:
  diskwright fs get disk.img /boot ./boot-copy --partition 1`,
  options: { ...LOCATION_OPTIONS, force: { type: 'boolean', short: 'f' } },
  async run(args, ctx) {
    const [image, path, dest] = positionals(args, 'get', 3, 3, 'IMAGE PATH HOSTDEST');
    noteLeaves(ctx, `no ${dest} written`);
    const progress = createProgress(ctx, `get ${path}`);
    const summary = await session(image!, args, ctx, false, (fs) => fs.copyOut(path!, dest!, { overwrite: flag(args, 'force'), onProgress: (p) => progress.update(p) })).finally(() => progress.done());
    if (ctx.json) printJson(ctx, { image, path, output: dest, ...summary });
    else ctx.stdout.write(`copied ${summary.files} file(s), ${summary.directories} director(ies), ${summary.symlinks} symlink(s), ${summary.bytes} bytes to ${dest} in ${formatSeconds(progress.seconds())}\n`);
    return 0;
  },
};

const rm: Command = {
  name: 'fs rm',
  summary: 'remove files or directories inside an ext2/3/4 image',
  help: `Usage: diskwright fs rm IMAGE PATH... [-r] [-f] [--partition N | --offset BYTES]

  -r, --recursive   remove directories and their contents
  -f, --force       ignore paths that do not exist
${LOCATION_HELP}
${REPLAY_HELP}
${JSON_HELP}

Example:
  diskwright fs rm disk.img /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub --partition 1`,
  options: { ...WRITE_OPTIONS, ...BATCH_OPS.rm.options },
  async run(args, ctx) {
    const [image, ...paths] = positionals(args, 'rm', 2, 10_000, 'IMAGE PATH...');
    await session(image!, args, ctx, true, await BATCH_OPS.rm.prepare(paths, args));
    if (ctx.json) printJson(ctx, { image, removed: paths });
    return 0;
  },
};

const mkdir: Command = {
  name: 'fs mkdir',
  summary: 'create directories inside an ext2/3/4 image',
  help: `Usage: diskwright fs mkdir IMAGE PATH... [--parents] [--mode 0755] [--uid N] [--gid N] [--partition N]

  --parents         create parents as needed; no error if the directory exists
                    (long only: -p is --partition, as in every diskwright command)
  --mode OCTAL      permission bits (default 0755)
  --uid N, --gid N  numeric owner of created directories
${LOCATION_HELP}
${REPLAY_HELP}
${JSON_HELP}

Example:
  diskwright fs mkdir disk.img /etc/systemd/system/serial-getty@ttyS0.service.d --parents --partition 1`,
  options: { ...WRITE_OPTIONS, ...BATCH_OPS.mkdir.options },
  async run(args, ctx) {
    const [image, ...paths] = positionals(args, 'mkdir', 2, 10_000, 'IMAGE PATH...');
    await session(image!, args, ctx, true, await BATCH_OPS.mkdir.prepare(paths, args));
    if (ctx.json) printJson(ctx, { image, created: paths });
    return 0;
  },
};

const ln: Command = {
  name: 'fs ln',
  summary: 'create a symbolic link inside an ext2/3/4 image',
  help: `Usage: diskwright fs ln IMAGE TARGET LINKPATH [-s] [--uid N] [--gid N] [--partition N]

Creates the symlink LINKPATH -> TARGET inside the image. TARGET is stored as given (it is resolved
inside the guest, not on the host). Only symbolic links are supported (-s is accepted and implied).
${LOCATION_HELP}
${REPLAY_HELP}
${JSON_HELP}

Example:
  diskwright fs ln disk.img /lib/systemd/system/serial-getty@.service /etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service -s --partition 1`,
  options: { ...WRITE_OPTIONS, ...BATCH_OPS.ln.options },
  async run(args, ctx) {
    const [image, target, link] = positionals(args, 'ln', 3, 3, 'IMAGE TARGET LINKPATH');
    await session(image!, args, ctx, true, await BATCH_OPS.ln.prepare([target!, link!], args));
    if (ctx.json) printJson(ctx, { image, link, target });
    return 0;
  },
};

const chmod: Command = {
  name: 'fs chmod',
  summary: 'change permission bits inside an ext2/3/4 image',
  help: `Usage: diskwright fs chmod IMAGE MODE PATH... [--partition N | --offset BYTES]

MODE is octal (e.g. 0644, 4755). Symlinks are followed inside the image.
${LOCATION_HELP}
${REPLAY_HELP}
${JSON_HELP}

Example:
  diskwright fs chmod disk.img 0600 /etc/ssh/sshd_config --partition 1`,
  options: { ...WRITE_OPTIONS },
  async run(args, ctx) {
    const [image, modeText, ...paths] = positionals(args, 'chmod', 3, 10_000, 'IMAGE MODE PATH...');
    const mode = parseMode(modeText, 'MODE')!;
    await session(image!, args, ctx, true, await BATCH_OPS.chmod.prepare([modeText!, ...paths], args));
    if (ctx.json) printJson(ctx, { image, mode: `0${mode.toString(8).padStart(3, '0')}`, paths });
    return 0;
  },
};

const chown: Command = {
  name: 'fs chown',
  summary: 'change numeric owners inside an ext2/3/4 image',
  help: `Usage: diskwright fs chown IMAGE UID[:GID] PATH... [--partition N | --offset BYTES]

Owners are numeric (the image's /etc/passwd is not consulted). Without :GID the group is kept.
${LOCATION_HELP}
${REPLAY_HELP}
${JSON_HELP}

Example:
  diskwright fs chown disk.img 1000:1000 /home/user --partition 1`,
  options: { ...WRITE_OPTIONS },
  async run(args, ctx) {
    const [image, spec, ...paths] = positionals(args, 'chown', 3, 10_000, 'IMAGE UID[:GID] PATH...');
    const { uid, gid } = parseOwnerSpec(spec!);
    await session(image!, args, ctx, true, await BATCH_OPS.chown.prepare([spec!, ...paths], args));
    if (ctx.json) printJson(ctx, { image, uid, gid: gid ?? null, paths });
    return 0;
  },
};

const stat: Command = {
  name: 'fs stat',
  summary: 'show inode details of a path inside an ext2/3/4 image',
  help: `Usage: diskwright fs stat IMAGE PATH [--partition N | --offset BYTES] [--json]

Shows the path itself (a symlink is not followed).
${LOCATION_HELP}
  --json            one object (path, kind, mode, uid, gid, size, nlink, ino, times, linkTarget)

Example:
  diskwright fs stat disk.img /etc/resolv.conf --partition 1`,
  options: { ...LOCATION_OPTIONS },
  async run(args, ctx) {
    const [image, path] = positionals(args, 'stat', 2, 2, 'IMAGE PATH');
    const entry = await session(image!, args, ctx, false, (fs) => fs.lstat(path!));
    if (ctx.json) {
      printJson(ctx, statJson(entry));
      return 0;
    }
    ctx.stdout.write(
      [
        `  Path: ${entry.path}${entry.linkTarget === undefined ? '' : ` -> ${entry.linkTarget}`}`,
        `  Type: ${entry.kind}  Size: ${entry.size}  Links: ${entry.nlink}  Inode: ${entry.ino}`,
        `Access: (0${entry.mode.toString(8).padStart(3, '0')}/${modeString(entry)})  Uid: ${entry.uid}  Gid: ${entry.gid}`,
        `Access: ${entry.atime.toISOString()}`,
        `Modify: ${entry.mtime.toISOString()}`,
        `Change: ${entry.ctime.toISOString()}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};


/** Most lines a batch script may hold (named limit: a script is untrusted input). */
const MAX_BATCH_LINES = 100_000;

/**
 * Splits one batch line into words the way a shell would for plain arguments: blanks separate,
 * '…' keeps everything literally, "…" and \ escape blanks and quotes. No variables, globs or
 * operators — nothing is ever run.
 */
export function splitBatchLine(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= line.length) throw new InvalidArgumentError('a line ends with a lone backslash');
      word = (word ?? '') + line[++i];
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote !== undefined) throw new InvalidArgumentError(`unterminated ${quote} quote`);
  if (word !== undefined) words.push(word);
  return words;
}

const batch: Command = {
  name: 'fs batch',
  summary: 'make many changes inside an ext2/3/4 image in one session and one commit',
  help: `Usage: diskwright fs batch IMAGE SCRIPT|- [--partition N | --offset BYTES] [--json]

Runs the operations of SCRIPT (a file, or - for stdin) in one process, one session and one atomic
commit: either every line takes effect or none does. One operation per line, written as the fs
command without "fs" and without IMAGE, with that command's options:
  put SOURCE DEST [--mode OCTAL] [--uid N] [--gid N] [--parents]
  mkdir PATH... [--parents] [--mode OCTAL] [--uid N] [--gid N]
  rm PATH... [-r] [--force]
  ln TARGET LINKPATH [--uid N] [--gid N]
  chmod MODE PATH...
  chown UID[:GID] PATH...
Blank lines and lines starting with # are ignored; words are split like shell words ('…', "…", \\),
with no variables or globs. Every line is checked before the image is opened; errors name the line.
${LOCATION_HELP}
${REPLAY_HELP}
${JSON_HELP}

Example:
  diskwright fs batch disk.img edits.txt --partition 1`,
  options: { ...WRITE_OPTIONS },
  async run(args, ctx) {
    const [image, script] = positionals(args, 'batch', 2, 2, 'IMAGE SCRIPT|-');
    const text = await (script === '-' ? readStdin() : readFile(script!, 'utf8')).catch((error: unknown) => {
      if (error instanceof DiskwrightError) throw error;
      throw new DiskwrightError('E_NOT_FOUND', `cannot read batch script ${script}: ${(error as Error).message}`, { path: script!, cause: error });
    });
    const lines = text.split('\n');
    if (lines.length > MAX_BATCH_LINES) throw new DiskwrightError('E_LIMIT', `batch script ${script} has ${lines.length} lines, more than ${MAX_BATCH_LINES}`, { hint: 'split it into several scripts' });
    const label = script === '-' ? 'stdin' : script;
    const steps: { line: number; op: string; apply: (fs: FilesystemSession) => Promise<unknown> }[] = [];
    for (const [index, raw] of lines.entries()) {
      const where = `${label}:${index + 1}`;
      try {
        const trimmed = raw.trim();
        if (trimmed === '' || trimmed.startsWith('#')) continue;
        const [word, ...rest] = splitBatchLine(trimmed);
        if (!Object.hasOwn(BATCH_OPS, word!)) {
          throw new DiskwrightError('E_USAGE', `unknown operation \`${word}\``, { hint: `use one of: ${Object.keys(BATCH_OPS).join(', ')}` });
        }
        const op = BATCH_OPS[word as keyof typeof BATCH_OPS];
        const opArgs = parseCommandLine(op.command, rest, op.options);
        const operands = opArgs.positionals;
        if (operands.length < op.min || operands.length > op.max) throw new DiskwrightError('E_USAGE', `${word}: expected ${op.operands}`, { hint: `run \`diskwright ${op.command} --help\`` });
        steps.push({ line: index + 1, op: word!, apply: await op.prepare(operands, opArgs) });
      } catch (error) {
        if (!(error instanceof DiskwrightError)) throw error;
        throw new DiskwrightError(error.code, `fs batch: ${where}: ${error.message}`, { ...(error.hint ? { hint: error.hint } : {}), cause: error });
      }
    }
    const progress = createProgress(ctx, `batch ${image}`);
    await session(image!, args, ctx, true, async (fs) => {
      for (const [done, step] of steps.entries()) {
        progress.update({ bytes: done, total: steps.length });
        // An interrupt names the line that was running.
        noteStep(ctx, `${label}:${step.line} ${step.op}`);
        try {
          await step.apply(fs);
        } catch (error) {
          if (!(error instanceof DiskwrightError)) throw error;
          throw new DiskwrightError(error.code, `fs batch: ${label}:${step.line}: ${step.op}: ${error.message} (nothing was written)`, {
            ...(error.hint ? { hint: error.hint } : {}),
            cause: error,
          });
        }
      }
      progress.update({ bytes: steps.length, total: steps.length });
    }, undefined, false).finally(() => progress.done());
    if (ctx.json) printJson(ctx, { image, operations: steps.length, lines: steps.map((s) => ({ line: s.line, op: s.op })) });
    else ctx.stdout.write(`applied ${steps.length} operation(s) to ${image} in one commit\n`);
    return 0;
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** CLI commands of the in-image file-operations area. */
export const commands: readonly Command[] = [ls, cat, put, get, rm, mkdir, ln, chmod, chown, stat, batch];
