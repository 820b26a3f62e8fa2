import { DiskwrightError, formatBytes, parsePartitionNumber, resizeImage } from '../../index.js';
import { ALLOW_UNALIGNED_OPTION, diskSize, printJson, stringOption, type Command } from '../command.js';
import { FORMAT_HELP, FORMAT_OPTION, imageFormat, useImage } from '../image.js';
import { createPassReporter, noteStep } from '../progress.js';
import { openImage } from '../../disk/open.js';
import { stat } from 'node:fs/promises';

const resize: Command = {
  name: 'resize',
  summary: 'grow a disk or filesystem image: the file, the last partition and its ext2/3/4 filesystem',
  help: `Usage: diskwright resize IMAGE [--partition N] [--format raw|qcow2] SIZE

Sets the size of IMAGE to SIZE (or grows it by +SIZE), then grows the filesystem to fill it
(resize2fs 1.47.0 in WebAssembly, no root). With --partition N, N must be the last partition on
the disk — a logical partition inside an extended one included: its table entry (for a logical
partition also its EBR and the extended container; for GPT the backup header moves to the new
end) and then its filesystem are grown. The file stays sparse. For a qcow2 IMAGE its virtual size
is what grows (the file only by the clusters written); file, table and filesystem are one commit.

Shrinking is refused for partitions; a whole-image filesystem is shrunk only as far as resize2fs
allows (the filesystem first, then the file).

Options:
  -p, --partition N  the partition to grow (diskwright partitions IMAGE lists them)
      --allow-unaligned  allow a SIZE that is not a multiple of 512 bytes
${FORMAT_HELP}
      --json         print {"imageSize","blocksCount","blockSize",…}

Examples:
  diskwright resize instance.img --partition 1 20G
  diskwright resize rootfs.ext4 +2G
`,
  options: {
    partition: { type: 'string', short: 'p' },
    ...ALLOW_UNALIGNED_OPTION,
    ...FORMAT_OPTION,
  },
  async run(args, ctx) {
    const [image, sizeText, ...extra] = args.positionals;
    if (!image || !sizeText || extra.length > 0) throw new DiskwrightError('E_USAGE', 'resize: expected IMAGE and SIZE arguments', { hint: 'diskwright resize IMAGE [--partition N] 20G' });
    let size: number;
    const format = imageFormat(args);
    if (sizeText.startsWith('+')) {
      await stat(image).catch(() => {
        throw new DiskwrightError('E_NOT_FOUND', `cannot open image ${image}`, { path: image, hint: 'check the image path' });
      });
      // The size a guest sees: a qcow2's virtual size, not its file's.
      const disk = openImage(image, { readOnly: true, ...format });
      const current = disk.size;
      disk.close();
      size = current + diskSize(args, sizeText.slice(1), 'SIZE');
    } else {
      size = diskSize(args, sizeText, 'SIZE');
    }
    const partitionText = stringOption(args, 'partition');
    const passes = createPassReporter(ctx);
    const result = await useImage(args, ctx, image, 'write', async () => {
      noteStep(ctx, 'reading the filesystem');
      const resized = await resizeImage(image, {
        size,
        signal: ctx.signal,
        onPass: passes.onPass,
        ...format,
        ...(partitionText !== undefined ? { partition: parsePartitionNumber(partitionText) } : {}),
      });
      passes.done();
      return resized;
    });
    if (ctx.json) {
      printJson(ctx, {
        image,
        partition: result.partition ?? null,
        imageSize: result.imageSize,
        oldImageSize: result.oldImageSize,
        partitionSectors: result.partitionSectors ?? null,
        blockSize: result.blockSize,
        oldBlocksCount: result.oldBlocksCount,
        blocksCount: result.blocksCount,
      });
    } else {
      const where = result.partition !== undefined ? ` partition ${result.partition}` : '';
      ctx.stdout.write(`${image}: ${formatBytes(result.oldImageSize)} -> ${formatBytes(result.imageSize)}; filesystem${where} ${result.oldBlocksCount} -> ${result.blocksCount} blocks of ${result.blockSize} bytes\n`);
    }
    return 0;
  },
};

export const commands: readonly Command[] = [resize];
