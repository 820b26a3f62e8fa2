// Direct area imports, not the library barrel: this command must start fast (bench/cli-start.mjs).
import { DiskwrightError, isDiskwrightError, type ErrorCode } from '../../errors.js';
import { dumpFilesystemHeader, headerNeedsRecovery, findFilesystem, parsePartitionNumber } from '../../e2fs/index.js';
import { imageInfo, type ImageInfo } from '../../disk/qcow2/info.js';
import { formatBytes } from '../../bytes/size.js';
import { printJson, stringOption, type Command } from '../command.js';
import { formatOption } from '../image.js';

/** qemu-img info's human lines for one layer and its backing chain. */
function imageLines(info: ImageInfo): string[] {
  const lines = [
    `image: ${info.filename}`,
    `file format: ${info.format}`,
    `virtual size: ${formatBytes(info['virtual-size'])} (${info['virtual-size']} bytes)`,
    `disk size: ${formatBytes(info['actual-size'])}`,
  ];
  if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
  if (info['backing-filename'] !== undefined) lines.push(`backing file: ${info['backing-filename']}${info['full-backing-filename'] !== info['backing-filename'] ? ` (actual path: ${info['full-backing-filename']})` : ''}`);
  if (info['backing-filename-format'] !== undefined) lines.push(`backing file format: ${info['backing-filename-format']}`);
  const data = info['format-specific']?.data;
  if (data) lines.push(`compat: ${data.compat}`, `compression type: ${data['compression-type']}`, `refcount bits: ${data['refcount-bits']}`, ...(data['lazy-refcounts'] === undefined ? [] : [`lazy refcounts: ${data['lazy-refcounts']}`]), ...(data.corrupt ? ['corrupt: true'] : []));
  if (info['dirty-flag']) lines.push('dirty flag: true');
  return info['backing-image'] ? [...lines, '', ...imageLines(info['backing-image'])] : lines;
}
import { useImage } from '../image.js';

/** Errors of damaged image data (an L2 entry past the end of the file, …), not of the arguments. */
const DAMAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['E_OUT_OF_RANGE', 'E_OVERLAP', 'E_LOOP', 'E_LIMIT', 'E_TRUNCATED', 'E_BAD_CHECKSUM', 'E_IO', 'E_EXTFS']);

const info: Command = {
  name: 'info',
  summary: 'show the image format (qemu-img info) and the superblock of an ext2/3/4 filesystem (dumpe2fs -h as data)',
  help: `Usage: diskwright info IMAGE [--partition N] [--format raw|qcow2] [--json]

Prints the image's format, virtual and allocated size and backing chain (the fields of
\`qemu-img info --output=json\`: virtual-size, actual-size, cluster-size, backing-filename, …).
A qcow2 whose format was only probed is described from its header; its backing file is not
opened unless --format qcow2 says the chain is trusted (docs/qcow2.md).

Prints the superblock and journal header of the filesystem in IMAGE (or in partition N of a disk
image), read by dumpe2fs 1.47.0 built to WebAssembly. A journal that needs recovery (the
filesystem was not cleanly unmounted) is reported: run \`diskwright fsck --fix\` before writing.
Without --partition, an image whose start holds no filesystem (a partitioned disk) gets its image
facts and a note saying what is there instead, exit 0. Damaged data under a sound header (a qcow2
L2 entry past the end of the file) gets the image facts, as qemu-img info shows them, then the
error, exit 1.

Options:
  -p, --partition N  the partition to read
      --format F     raw or qcow2 (default: diskwright's record on the file, else the qcow2 magic)
      --json         print {"image": PATH, "imageInfo": {"format", "virtual-size", …}, "fields": {"Block count": "…", …}, "needsRecovery": bool, …}

Examples:
  diskwright info debbase.img --partition 1
  diskwright info rootfs.ext4 --json | jq -r '.fields["Filesystem UUID"]'
`,
  options: {
    partition: { type: 'string', short: 'p' },
    format: { type: 'string' },
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) throw new DiskwrightError('E_USAGE', 'info: expected exactly one IMAGE argument', { hint: 'diskwright info IMAGE [--partition N]' });
    const partitionText = stringOption(args, 'partition');
    const opened = await useImage(args, ctx, image, 'read', async () => {
      const forced = formatOption(args, 'format');
      const layer = imageInfo(image, forced);
      // A probed qcow2 naming a backing file is described from its header only (docs/qcow2.md).
      if (layer['format-source'] === 'probed' && layer['backing-filename'] !== undefined) return { layer, note: `${image} names a backing file that diskwright was not told to trust; pass --format qcow2 to show its filesystem` };
      const format = forced ? { format: forced } : {};
      const partition = partitionText === undefined ? undefined : parsePartitionNumber(partitionText);
      try {
        const where = await findFilesystem(image, partition, format);
        return { layer, where, fields: await dumpFilesystemHeader(image, { offset: where.offset, signal: ctx.signal, ...format, ...(where.partition !== undefined ? { partition: where.partition } : {}) }) };
      } catch (error) {
        // Without --partition, a start that holds no filesystem (a partitioned disk, raw or qcow2;
        // an empty image) is an answer: the image facts, and what is there instead as a note.
        if (partition === undefined && isDiskwrightError(error, 'E_BAD_SIGNATURE')) return { layer, note: error.message, noteHint: error.hint };
        // Damaged data under a sound header: the facts qemu-img info shows still hold; then the error.
        if (isDiskwrightError(error) && DAMAGE_CODES.has(error.code)) return { layer, failure: error };
        throw error;
      }
    });
    const image_ = opened.layer;
    if (!opened.where || !opened.fields) {
      if (ctx.json) printJson(ctx, { image, imageInfo: image_, ...(opened.note ? { note: opened.note } : {}) });
      else ctx.stdout.write(`${imageLines(image_).join('\n')}\n`);
      if (opened.failure) throw opened.failure;
      if (opened.note) ctx.stderr.write(`diskwright: note: ${opened.note}\n${opened.noteHint ? `  hint: ${opened.noteHint}\n` : ''}`);
      return 0;
    }
    const { where, fields } = opened;
    const needsRecovery = headerNeedsRecovery(fields);
    const features = (fields['Filesystem features'] ?? '').split(/\s+/).filter((f) => f !== '');
    const kind = features.includes('extent') || features.includes('64bit') || features.includes('flex_bg') ? 'ext4' : features.includes('has_journal') ? 'ext3' : 'ext2';
    if (ctx.json) {
      printJson(ctx, {
        image,
        imageInfo: image_,
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
    ctx.stdout.write(`${imageLines(image_).join('\n')}\n\n`);
    const width = Math.max(...Object.keys(fields).map((k) => k.length)) + 2;
    for (const [key, value] of Object.entries(fields)) ctx.stdout.write(`${`${key}:`.padEnd(width)}${value}\n`);
    if (needsRecovery) {
      ctx.stderr.write(`diskwright: warning: the journal of ${image}${where.partition ? ` partition ${where.partition}` : ''} needs recovery (not cleanly unmounted); run \`diskwright fsck --fix\` before writing to it\n`);
    }
    return 0;
  },
};

export const commands: readonly Command[] = [info];
