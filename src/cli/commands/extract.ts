// Direct area imports, not the library barrel: the barrel's execa, tar and unixcrypt imports
// loaded ~100 modules at every start (0.3–0.8 s with a cold page cache).
import { formatBytes } from '../../bytes/size.js';
import { DiskwrightError, InvalidArgumentError } from '../../errors.js';
import { extractPartition } from '../../io/extract.js';
import { flag, printJson, stringOption, type Command } from '../command.js';
import { useImage } from '../image.js';
import { createProgress, noteLeaves } from '../progress.js';
import { formatOption } from './convert.js';

const extract: Command = {
  name: 'extract',
  summary: 'copy one partition out of a disk image into a sparse file',
  help: `Usage: diskwright extract IMAGE --partition N -o OUT [--force] [--only-used] [--json]

Writes partition N of IMAGE to OUT. By default OUT is byte-identical to
  dd if=IMAGE of=OUT skip=START count=SIZE bs=512
(logical partitions 5, 6, … included), with all-zero 4 KiB blocks left as holes. OUT is written
to a temp file beside it and renamed when complete: a failure or Ctrl-C leaves no OUT.

Options:
  -p, --partition N   partition number as \`diskwright partitions\` lists it
  -o, --output OUT    output file
  -f, --force         replace OUT if it exists
      --format F      IMAGE is raw or qcow2 (default: diskwright's record, else the qcow2 magic;
                      a probed qcow2's backing file is followed only with --format qcow2)
      --only-used     ext2/3/4 only (raw or qcow2): read and copy just the blocks the filesystem has allocated
                      (from its block bitmaps). NOT byte-identical: stale bytes in free blocks
                      become zeros; the result is an equivalent filesystem (e2fsck-clean, same
                      files). Faster on filesystems with dirty free space.
      --json          progress as JSON lines on stderr; summary {bytes, dataBytes, seconds, …} on stdout

Example:
  diskwright extract debbase.img --partition 1 -o debian-tmpl
`,
  options: {
    partition: { type: 'string', short: 'p' },
    output: { type: 'string', short: 'o' },
    force: { type: 'boolean', short: 'f' },
    'only-used': { type: 'boolean' },
    format: { type: 'string' },
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) {
      throw new DiskwrightError('E_USAGE', 'extract: expected exactly one IMAGE argument', { hint: 'diskwright extract IMAGE --partition 1 -o OUT' });
    }
    const partitionText = stringOption(args, 'partition');
    const output = stringOption(args, 'output');
    if (partitionText === undefined) throw new DiskwrightError('E_USAGE', 'extract: --partition is required', { hint: 'run `diskwright partitions IMAGE` to list them' });
    if (output === undefined) throw new DiskwrightError('E_USAGE', 'extract: -o/--output is required', { hint: 'e.g. -o debian-tmpl' });
    if (!/^[1-9]\d{0,5}$/.test(partitionText)) {
      throw new InvalidArgumentError(`Expected \`--partition\` to be a partition number like 1 or 5, got \`${partitionText}\``);
    }
    const progress = createProgress(ctx, `extract p${partitionText}`);
    noteLeaves(ctx, `no ${output} written`);
    let summary;
    try {
      summary = await useImage(args, ctx, image, 'read', () =>
        extractPartition(image, Number(partitionText), output, {
          overwrite: flag(args, 'force'),
          onlyUsed: flag(args, 'only-used'),
        ...(formatOption(args, 'format') ? { format: formatOption(args, 'format')! } : {}),
          signal: ctx.signal,
          onProgress: (p) => progress.update(p),
        }),
      );
    } finally {
      progress.done();
    }
    if (ctx.json) {
      printJson(ctx, { output, ...summary });
    } else {
      const speed = summary.seconds > 0 ? summary.bytes / summary.seconds : 0;
      ctx.stdout.write(
        `${output}: partition ${summary.partition}, ${formatBytes(summary.bytes)} (${formatBytes(summary.dataBytes)} data, rest holes)` +
          `${summary.mode === 'only-used' ? ', allocated blocks only' : ''} in ${summary.seconds.toFixed(2)} s (${formatBytes(speed)}/s)\n`,
      );
    }
    return 0;
  },
};

export const commands: readonly Command[] = [extract];
