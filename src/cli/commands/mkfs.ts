import { DiskwrightError, makeFilesystem, makeFilesystemInPartition, parseSize, type FilesystemType, type PartitionFsType } from '../../index.js';
import { flag, printJson, stringOption, type Command } from '../command.js';
import { FORMAT_OPTION, imageFormat, useImage } from '../image.js';
import { fillReporter } from '../fill-progress.js';
import { createStepReporter, noteLeaves, noteStep } from '../progress.js';
import { readFile } from 'node:fs/promises';
import { parseOwner, parseOwnerMap, withFill } from '../../build/index.js';

const mkfs: Command = {
  name: 'mkfs',
  summary: 'make an ext2/3/4 filesystem (or swap) image or partition, optionally from a host directory, without root',
  help: `Usage: diskwright mkfs IMAGE --type ext2|ext3|ext4 --size SIZE [--from DIR] [--label L] [--uuid U] [--force]
       diskwright mkfs IMAGE --partition N --type ext2|ext3|ext4|swap [--from DIR] [--label L] [--uuid U] [--format raw|qcow2] [--force]

Creates IMAGE holding a new filesystem made by mke2fs 1.47.0 (WebAssembly; no root, no loop
device, no host e2fsprogs). With --from, the filesystem is filled with DIR's tree (mke2fs -d):
a rootless template build. The image is written beside IMAGE and renamed when complete, and stays
sparse (an 8G image uses a few MB until filled).

With --partition N, the filesystem is made inside partition N of the partitioned image IMAGE (raw
or qcow2) and fills it (no --size). --type swap writes the swap signature \`mkswap -U UUID -L LABEL\` writes.
The change is all-or-nothing: the filesystem is built beside the image and committed through
diskwright's undo record, so a kill leaves the partition as it was. A partition that already
holds a filesystem or swap area needs --force.

Options:
  -t, --type T    ext2, ext3, ext4 (default) or, with --partition, swap
  -s, --size SIZE size with a unit: 512M, 8G, … (a multiple of 1K)
  -p, --partition N  make it inside partition N of IMAGE (sized to the partition)
      --from SRC  copy a directory's or a tar archive's files into the filesystem: owners, modes,
                  times, xattrs (capabilities, ACLs, SELinux labels), hard links, symlinks,
                  device nodes and fifos — no root needed. Archives: tar, .gz, .xz, .zst
                  (GNU tar --xattrs --acls, mmdebstrap, container layers)
      --owner O   give every copied file owner O: root (0:0, like genext2fs -U) or UID:GID
      --owner-map FILE  translate owners instead: lines \`uid FROM TO\` / \`gid FROM TO\`
  -L, --label L   volume label (at most 16 bytes)
  -U, --uuid U    filesystem UUID (default: random)
      --format F  with --partition: IMAGE is raw or qcow2 (default: the format diskwright recorded
                  on it, else the qcow2 magic; a probed qcow2's backing file is followed only with
                  --format qcow2)
  -f, --force     replace IMAGE if it exists
      --json      print {"output","type","size","from","label"}

Examples:
  diskwright mkfs root.ext3 --type ext3 --size 8G --from ./rootfs --label root
  diskwright mkfs scratch.img --size 512M
  diskwright mkfs disk.img --partition 1 --type ext3 --from ./rootfs
  diskwright mkfs cloud.qcow2 -p 2 --type ext4 --label data
  diskwright mkfs disk.img -p 5 --type swap --uuid 1b4e28ba-2fa1-11d2-883f-b9a761bde3fb
`,
  options: {
    type: { type: 'string', short: 't' },
    size: { type: 'string', short: 's' },
    partition: { type: 'string', short: 'p' },
    from: { type: 'string' },
    owner: { type: 'string' },
    'owner-map': { type: 'string' },
    label: { type: 'string', short: 'L' },
    uuid: { type: 'string', short: 'U' },
    force: { type: 'boolean', short: 'f' },
    ...FORMAT_OPTION,
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) throw new DiskwrightError('E_USAGE', 'mkfs: expected exactly one IMAGE argument', { hint: 'diskwright mkfs IMAGE --type ext3 --size 8G' });
    const sizeText = stringOption(args, 'size');
    const partitionText = stringOption(args, 'partition');
    const from = stringOption(args, 'from');
    const label = stringOption(args, 'label');
    const uuid = stringOption(args, 'uuid');
    const ownerText = stringOption(args, 'owner');
    const ownerMapPath = stringOption(args, 'owner-map');
    if (ownerText !== undefined && ownerMapPath !== undefined) throw new DiskwrightError('E_USAGE', 'mkfs: give --owner or --owner-map, not both', { hint: 'a map file can send every id to 0 too' });
    const owner = ownerText !== undefined ? parseOwner(ownerText) : ownerMapPath !== undefined ? parseOwnerMap(await readFile(ownerMapPath, 'utf8'), ownerMapPath) : undefined;
    const progress = fillReporter(ctx);
    // Before the fill reports figures: an archive is decompressed and indexed, a tree opened.
    noteStep(ctx, from === undefined ? 'making the filesystem' : `reading ${from}`);
    const filled = (): string => (from === undefined ? '' : ` from ${from}${progress.closing() ? ` (${progress.closing()})` : ''}`);
    if (partitionText !== undefined) {
      if (!/^[1-9][0-9]{0,2}$/.test(partitionText)) throw new DiskwrightError('E_USAGE', `mkfs: --partition expects a partition number like 1 or 5, got \`${partitionText}\``, { hint: '`diskwright partitions IMAGE` lists them' });
      if (sizeText !== undefined) throw new DiskwrightError('E_USAGE', 'mkfs: --size cannot be combined with --partition (the filesystem fills the partition)', { hint: 'drop --size' });
      const partType = (stringOption(args, 'type') ?? 'ext4') as PartitionFsType;
      if (!['ext2', 'ext3', 'ext4', 'swap'].includes(partType)) throw new DiskwrightError('E_USAGE', `mkfs: --type must be ext2, ext3, ext4 or swap, got \`${partType}\``, { hint: 'e.g. --type ext3' });
      noteLeaves(ctx, `${image} unchanged`);
      // Writing the made filesystem into the partition is a step of its own (seconds for a big one).
      const report = createStepReporter(ctx);
      let committing: number | undefined;
      // A writer into an existing image: an interrupted commit is rolled back first.
      const result = await useImage(args, ctx, image, 'write', () =>
        makeFilesystemInPartition(image, Number(partitionText), {
          type: partType,
          force: flag(args, 'force'),
          ...imageFormat(args),
          signal: ctx.signal,
          ...(from !== undefined ? { from } : {}),
          ...(owner !== undefined ? { owner } : {}),
          ...(label !== undefined ? { label } : {}),
          ...(uuid !== undefined ? { uuid } : {}),
          onFillProgress: progress.update,
          onCommit: () => {
            progress.done();
            committing = performance.now();
            report({ step: 'commit', phase: 'start' });
          },
        }),
      ).finally(() => progress.done());
      if (committing !== undefined) report({ step: 'commit', phase: 'done', seconds: (performance.now() - committing) / 1000 });
      if (ctx.json) printJson(ctx, { output: image, partition: result.partition, offset: result.offset, type: result.type, size: result.size, from: from ?? null, label: label ?? null });
      else ctx.stdout.write(`${image} partition ${result.partition}: ${result.type === 'swap' ? 'swap area' : `${result.type} filesystem`} of ${result.size} bytes at offset ${result.offset}${filled()}\n`);
      return 0;
    }
    if (stringOption(args, 'format') !== undefined) throw new DiskwrightError('E_USAGE', 'mkfs: --format needs --partition (a new filesystem image is raw)', { hint: 'make it, then `diskwright convert IMAGE OUT -O qcow2`' });
    if (sizeText === undefined) throw new DiskwrightError('E_USAGE', 'mkfs: --size is required', { hint: 'e.g. --size 8G, or --partition N inside a partitioned image' });
    const size = parseSize(sizeText, 'size');
    const type = (stringOption(args, 'type') ?? 'ext4') as FilesystemType;
    if (type === ('swap' as FilesystemType)) throw new DiskwrightError('E_USAGE', 'mkfs: --type swap needs --partition N', { hint: 'partition the image first (diskwright partition), then mkfs IMAGE -p N --type swap' });
    const base = {
      type,
      size,
      force: flag(args, 'force'),
      signal: ctx.signal,
      ...(label !== undefined ? { label } : {}),
      ...(uuid !== undefined ? { uuid } : {}),
    };
    noteLeaves(ctx, `${image} not written`);
    await withFill(image, { ...(from !== undefined ? { from } : {}), ...(owner !== undefined ? { owner } : {}), onFillProgress: progress.update, signal: ctx.signal }, base, (options) => makeFilesystem(image, options)).finally(() => progress.done());
    if (ctx.json) printJson(ctx, { output: image, type, size, from: from ?? null, label: label ?? null });
    else ctx.stdout.write(`${image}: ${type} filesystem of ${size} bytes${filled()}\n`);
    return 0;
  },
};

export const commands: readonly Command[] = [mkfs];
