// Direct area imports, not the library barrel: this command must start fast.
import { formatBytes, parseSize } from '../../bytes/size.js';
import { DiskwrightError, InvalidArgumentError } from '../../errors.js';
import { convertImage } from '../../disk/qcow2/convert.js';
import type { DiskFormat } from '../../disk/types.js';
import { flag, printJson, stringOption, type Command } from '../command.js';
import { formatOption, useImage } from '../image.js';
import { createProgress, noteLeaves } from '../progress.js';

export { formatOption };

const convert: Command = {
  name: 'convert',
  summary: 'convert a disk image between raw and qcow2 (sparse, atomic), like qemu-img convert',
  help: `Usage: diskwright convert IN OUT [-O raw|qcow2] [-c [--compression-type zlib]] [--cluster-size N] [--format FMT] [--force] [--json]

Copies what a guest sees of IN into a new image OUT, like \`qemu-img convert\`: unallocated and
all-zero ranges are skipped (holes in raw output, unallocated clusters in qcow2), a backing chain
is flattened, and OUT appears only when complete (temp file beside it, fsync, rename).

IN's format: --format, else the format diskwright recorded when it made IN, else the qcow2 magic.
A qcow2 whose format was only probed is read without its backing file; pass --format qcow2 to
trust its backing chain (docs/qcow2.md explains why).

Options:
  -O, --output-format F  raw (default) or qcow2
  -c, --compress         qcow2 output: deflate-compress clusters (on one worker thread per core)
      --compression-type T  with -c: zlib (the default and the only one; zstd is refused)
      --cluster-size N   qcow2 output cluster size, 512 to 2M (default 64K)
      --format F         input format: raw or qcow2
  -f, --force            replace OUT if it exists
      --json             progress as JSON lines on stderr; {"output","format","bytes","dataBytes","seconds"} on stdout

Examples:
  diskwright convert debian-12-genericcloud-amd64.qcow2 debbase.img
  diskwright convert debbase.img debbase.qcow2 -O qcow2 -c
`,
  options: {
    'output-format': { type: 'string', short: 'O' },
    compress: { type: 'boolean', short: 'c' },
    'compression-type': { type: 'string' },
    'cluster-size': { type: 'string' },
    format: { type: 'string' },
    force: { type: 'boolean', short: 'f' },
  },
  async run(args, ctx) {
    const [input, output, ...extra] = args.positionals;
    if (!input || !output || extra.length > 0) {
      throw new DiskwrightError('E_USAGE', 'convert: expected IN and OUT', { hint: 'diskwright convert IN OUT -O qcow2' });
    }
    const outputFormat = formatOption(args, 'output-format') ?? 'raw';
    const compressionType = stringOption(args, 'compression-type');
    if (compressionType !== undefined) {
      if (!flag(args, 'compress')) throw new InvalidArgumentError('--compression-type needs -c');
      if (compressionType === 'zstd') {
        throw new DiskwrightError('E_UNSUPPORTED_FEATURE', 'convert -c writes deflate (zlib) only: Node 20 has no zstd encoder', {
          hint: 'drop --compression-type (zlib is read by every qemu), or use qemu-img convert -c -O qcow2 -o compression_type=zstd',
        });
      }
      if (compressionType !== 'zlib') throw new InvalidArgumentError(`Expected \`--compression-type\` to be zlib or zstd, got \`${compressionType}\``);
    }
    const clusterText = stringOption(args, 'cluster-size');
    const clusterSize = clusterText === undefined ? undefined : parseSize(clusterText, 'cluster-size');
    if (clusterSize !== undefined && outputFormat !== 'qcow2') throw new InvalidArgumentError('--cluster-size needs -O qcow2');
    const progress = createProgress(ctx, `convert ${outputFormat}`);
    noteLeaves(ctx, `no ${output} written`);
    noteLeaves(ctx, `${input} unchanged`);
    let summary;
    try {
      // A reader of IN: an image with an interrupted commit is refused, not copied half-written.
      summary = await useImage(args, ctx, input, 'read', () =>
        convertImage(input, output, {
          inputFormat: formatOption(args, 'format'),
          outputFormat,
          compress: flag(args, 'compress'),
          clusterSize,
          overwrite: flag(args, 'force'),
          signal: ctx.signal,
          onProgress: (p) => progress.update(p),
        }),
      );
    } finally {
      progress.done();
    }
    if (ctx.json) printJson(ctx, { output, ...summary });
    else ctx.stdout.write(`${output}: ${summary.format}, ${formatBytes(summary.bytes)} (${formatBytes(summary.dataBytes)} data) in ${summary.seconds.toFixed(2)} s\n`);
    return 0;
  },
};

export const commands: readonly Command[] = [convert];
