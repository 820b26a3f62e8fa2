import { createImage, formatBytes, DiskwrightError, parseSize, InvalidArgumentError } from '../../index.js';
import { recordFormat } from '../../disk/format-record.js';
import { createQcow2Image } from '../../disk/qcow2/new-image.js';
import { ALLOW_UNALIGNED_OPTION, diskSize, flag, printJson, stringOption, type Command } from '../command.js';
import { formatOption } from './convert.js';

const create: Command = {
  name: 'create',
  summary: 'create a sparse raw or qcow2 disk image (instant, uses no space), or a qcow2 overlay',
  help: `Usage: diskwright create IMAGE --size SIZE [--format raw|qcow2] [--cluster-size N] [--force] [--json]
       diskwright create IMAGE --format qcow2 --backing FILE [--backing-format raw|qcow2] [--size SIZE]

Creates IMAGE as a sparse raw image of SIZE bytes: instant, no disk space used until written.
Replaces \`dd if=/dev/zero of=IMAGE bs=1M count=8192\`. With --format qcow2, like
\`qemu-img create -f qcow2 [-b FILE -F FMT]\`: an empty qcow2, or an overlay that reads FILE where
it has no data of its own (FILE is never written). A relative FILE is relative to IMAGE's directory.

Options:
  -s, --size SIZE   size with a unit: K, M, G, T (binary) or s (512-byte sectors), e.g. 8G, 2048s
      --format F    raw (default) or qcow2
      --cluster-size N  qcow2 cluster size, 512 to 2M (default 64K)
      --backing FILE    qcow2 overlay on FILE (the size defaults to FILE's)
      --backing-format F  raw or qcow2 (default: what diskwright recorded on FILE; else raw
                        when FILE has no qcow2 magic; a FILE that only looks like a qcow2
                        needs --backing-format qcow2)
  -f, --force       replace IMAGE if it exists
      --allow-unaligned  allow a size that is not a multiple of 512 bytes
      --json        print {"output","size","format",…} on stdout

Example:
  diskwright create debbase.img --size 8G
  diskwright create vm1.qcow2 --format qcow2 --backing debian-tmpl --backing-format raw
`,
  options: {
    size: { type: 'string', short: 's' },
    format: { type: 'string' },
    'cluster-size': { type: 'string' },
    backing: { type: 'string' },
    'backing-format': { type: 'string' },
    force: { type: 'boolean', short: 'f' },
    ...ALLOW_UNALIGNED_OPTION,
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) {
      throw new DiskwrightError('E_USAGE', 'create: expected exactly one IMAGE argument', { hint: 'diskwright create IMAGE --size 8G' });
    }
    const format = formatOption(args, 'format') ?? 'raw';
    const backing = stringOption(args, 'backing');
    const clusterText = stringOption(args, 'cluster-size');
    if (format === 'raw' && (backing !== undefined || clusterText !== undefined || stringOption(args, 'backing-format') !== undefined)) {
      throw new InvalidArgumentError('--backing, --backing-format and --cluster-size need --format qcow2');
    }
    const sizeText = stringOption(args, 'size');
    if (format === 'qcow2') {
      const created = await createQcow2Image(image, {
        size: sizeText === undefined ? undefined : diskSize(args, sizeText, '--size'),
        clusterSize: clusterText === undefined ? undefined : parseSize(clusterText, 'cluster-size'),
        backingFile: backing,
        backingFormat: formatOption(args, 'backing-format'),
        overwrite: flag(args, 'force'),
        signal: ctx.signal,
      });
      if (ctx.json) printJson(ctx, { output: image, format, ...created });
      else ctx.stdout.write(`${image}: qcow2, ${formatBytes(created.size)} (${created.size} bytes)${created.backingFile ? `, backing file ${created.backingFile} (${created.backingFormat})` : ''}\n`);
      return 0;
    }
    if (sizeText === undefined) throw new DiskwrightError('E_USAGE', 'create: --size is required', { hint: 'e.g. --size 8G' });
    const size = diskSize(args, sizeText, '--size');
    await createImage(image, size, { force: flag(args, 'force') });
    // diskwright made it raw: it must never be reinterpreted as qcow2 (docs/qcow2.md).
    recordFormat(image, 'raw');
    if (ctx.json) printJson(ctx, { output: image, size });
    else ctx.stdout.write(`${image}: ${formatBytes(size)} (${size} bytes), sparse\n`);
    return 0;
  },
};

export const commands: readonly Command[] = [create];
