// Direct area imports, not the library barrel: this command must start fast (bench/cli-start.mjs).
import { DiskwrightError } from '../../errors.js';
import { dumpFilesystemHeader, headerNeedsRecovery, findFilesystem, parsePartitionNumber } from '../../e2fs/index.js';
import { printJson, stringOption, type Command } from '../command.js';

const info: Command = {
  name: 'info',
  summary: 'show the superblock of an ext2/3/4 filesystem (dumpe2fs -h as data)',
  help: `Usage: diskwright info IMAGE [--partition N] [--json]

Prints the superblock and journal header of the filesystem in IMAGE (or in partition N of a disk
image), read by dumpe2fs 1.47.0 built to WebAssembly. A journal that needs recovery (the
filesystem was not cleanly unmounted) is reported: run \`diskwright fsck --fix\` before writing.

Options:
  -p, --partition N  the partition to read
      --json         print {"fields": {"Block count": "…", …}, "needsRecovery": bool, …}

Examples:
  diskwright info debbase.img --partition 1
  diskwright info rootfs.ext4 --json | jq -r '.fields["Filesystem UUID"]'
`,
  options: {
    partition: { type: 'string', short: 'p' },
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) throw new DiskwrightError('E_USAGE', 'info: expected exactly one IMAGE argument', { hint: 'diskwright info IMAGE [--partition N]' });
    const partitionText = stringOption(args, 'partition');
    const where = await findFilesystem(image, partitionText === undefined ? undefined : parsePartitionNumber(partitionText));
    const fields = await dumpFilesystemHeader(image, { offset: where.offset, signal: ctx.signal });
    const needsRecovery = headerNeedsRecovery(fields);
    const features = (fields['Filesystem features'] ?? '').split(/\s+/).filter((f) => f !== '');
    const kind = features.includes('extent') || features.includes('64bit') || features.includes('flex_bg') ? 'ext4' : features.includes('has_journal') ? 'ext3' : 'ext2';
    if (ctx.json) {
      printJson(ctx, {
        image,
        partition: where.partition ?? null,
        offset: where.offset,
        kind,
        uuid: fields['Filesystem UUID'] ?? null,
        label: fields['Filesystem volume name'] === '<none>' ? '' : (fields['Filesystem volume name'] ?? ''),
        blockSize: Number(fields['Block size'] ?? 0),
        blocksCount: Number(fields['Block count'] ?? 0),
        state: fields['Filesystem state'] ?? null,
        features,
        needsRecovery,
        fields,
      });
      return 0;
    }
    const width = Math.max(...Object.keys(fields).map((k) => k.length)) + 2;
    for (const [key, value] of Object.entries(fields)) ctx.stdout.write(`${`${key}:`.padEnd(width)}${value}\n`);
    if (needsRecovery) {
      ctx.stderr.write(`diskwright: warning: the journal of ${image}${where.partition ? ` partition ${where.partition}` : ''} needs recovery (not cleanly unmounted); run \`diskwright fsck --fix\` before writing to it\n`);
    }
    return 0;
  },
};

export const commands: readonly Command[] = [info];
