import { createImage, formatBytes, DiskwrightError } from '../../index.js';
import { ALLOW_UNALIGNED_OPTION, diskSize, flag, printJson, stringOption, type Command } from '../command.js';

const create: Command = {
  name: 'create',
  summary: 'create a sparse raw disk image (instant, uses no space)',
  help: `Usage: diskwright create IMAGE --size SIZE [--force] [--json]

Creates IMAGE as a sparse raw image of SIZE bytes: instant, no disk space used until written.
Replaces \`dd if=/dev/zero of=IMAGE bs=1M count=8192\`.

Options:
  -s, --size SIZE   size with a unit: K, M, G, T (binary) or s (512-byte sectors), e.g. 8G, 2048s
  -f, --force       replace IMAGE if it exists
      --allow-unaligned  allow a size that is not a multiple of 512 bytes
      --json        print {"output","size"} on stdout

Example:
  diskwright create debbase.img --size 8G
`,
  options: {
    size: { type: 'string', short: 's' },
    force: { type: 'boolean', short: 'f' },
    ...ALLOW_UNALIGNED_OPTION,
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) {
      throw new DiskwrightError('E_USAGE', 'create: expected exactly one IMAGE argument', { hint: 'diskwright create IMAGE --size 8G' });
    }
    const sizeText = stringOption(args, 'size');
    if (sizeText === undefined) throw new DiskwrightError('E_USAGE', 'create: --size is required', { hint: 'e.g. --size 8G' });
    const size = diskSize(args, sizeText, '--size');
    await createImage(image, size, { force: flag(args, 'force') });
    if (ctx.json) printJson(ctx, { output: image, size });
    else ctx.stdout.write(`${image}: ${formatBytes(size)} (${size} bytes), sparse\n`);
    return 0;
  },
};

export const commands: readonly Command[] = [create];
