import { checkFilesystem, DiskwrightError, findFilesystem, parsePartitionNumber, type CheckMode } from '../../index.js';
import { flag, printJson, stringOption, type Command } from '../command.js';
import { FORMAT_HELP, FORMAT_OPTION, imageFormat, useImage } from '../image.js';
import { createPassReporter, createStepReporter, noteStep } from '../progress.js';
import { EXIT, exitCodeFor } from '../run.js';

/** e2fsck's exit code for an operational error (it could not check: unreadable device, no filesystem). */
const FSCK_OPERATIONAL_ERROR = 8;

const fsck: Command = {
  name: 'fsck',
  summary: 'check or repair an ext2/3/4 filesystem (e2fsck in WebAssembly; exit code is e2fsck\'s)',
  help: `Usage: diskwright fsck IMAGE [--partition N] [--fix | --preen] [--format raw|qcow2] [--json]

Runs e2fsck 1.47.0 (built to WebAssembly, no host e2fsprogs or root needed) on the filesystem of
IMAGE, or on partition N of a disk image in place (no extraction). IMAGE may be a qcow2: repairs
are committed into it (the backing file of an overlay is only read).

Modes:
  (default)  e2fsck -fn: check only, never write
  --preen    e2fsck -p: fix what is safe to fix automatically
  --fix      e2fsck -fy: fix everything, answering yes

The exit status is e2fsck's own: 0 clean, 1 errors fixed, 2 fixed (reboot), 4 errors left
uncorrected, 8 operational error, 16 usage error, 32 cancelled, 128 library error. diskwright's
own failures keep that meaning: 8 when the check could not run or finish (missing or unreadable
image, truncated qcow2, no such partition, image locked), 2 for invalid usage and 130 when
interrupted, as in every diskwright command.

Options:
  -p, --partition N  the partition to check (diskwright partitions IMAGE lists them)
      --fix          repair (e2fsck -fy)
      --preen        repair safe problems only (e2fsck -p; long only here: -p is
                     --partition in every diskwright command)
${FORMAT_HELP}
      --json         print {"image","partition","mode","exitCode","status","log"}; status is clean/fixed/uncorrectable/error

Examples:
  diskwright fsck debbase.img --partition 1
  diskwright fsck rootfs.ext3 --fix
`,
  options: {
    partition: { type: 'string', short: 'p' },
    fix: { type: 'boolean' },
    preen: { type: 'boolean' },
    ...FORMAT_OPTION,
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) throw new DiskwrightError('E_USAGE', 'fsck: expected exactly one IMAGE argument', { hint: 'diskwright fsck IMAGE [--partition N] [--fix]' });
    if (flag(args, 'fix') && flag(args, 'preen')) throw new DiskwrightError('E_USAGE', 'fsck: --fix and --preen exclude each other', { hint: 'pick one' });
    const mode: CheckMode = flag(args, 'fix') ? 'fix' : flag(args, 'preen') ? 'preen' : 'check';
    const partitionText = stringOption(args, 'partition');
    // e2fsck prints its own "Pass N:" lines except when preening; a log needs no second copy.
    const passes = createPassReporter(ctx, createStepReporter(ctx, { quiet: mode !== 'preen' }));
    const { where, result } = await useImage(args, ctx, image, mode === 'check' ? 'read' : 'write', async () => {
      noteStep(ctx, 'opening the filesystem');
      const format = imageFormat(args);
      const where = await findFilesystem(image, partitionText === undefined ? undefined : parsePartitionNumber(partitionText), format);
      const result = await checkFilesystem(image, {
        ...format,
        mode,
        offset: where.offset,
        signal: ctx.signal,
        onPass: passes.onPass,
        ...(ctx.json
          ? {}
          : {
              onOutput: (stream: 'stdout' | 'stderr', text: string) => {
                // e2fsck's lines start on a clean line, not after the redrawn pass bar.
                if (ctx.isTTY) ctx.stderr.write('\r\x1b[2K');
                (stream === 'stdout' ? ctx.stdout : ctx.stderr).write(text);
              },
            }),
      });
      passes.done();
      return { where, result };
    });
    if (ctx.json) printJson(ctx, { image, partition: where.partition ?? null, mode, exitCode: result.exitCode, status: result.status, log: result.output });
    return result.exitCode;
  },
  exitCodeFor(error) {
    // An image that could not be read was not checked: never 1 ("errors corrected"), which a
    // script testing `exit <= 1` would take for a usable filesystem.
    const code = exitCodeFor(error);
    return code === EXIT.failure ? FSCK_OPERATIONAL_ERROR : code;
  },
};

export const commands: readonly Command[] = [fsck];
