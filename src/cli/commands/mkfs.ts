import { DiskwrightError, makeFilesystem, parseSize, type FilesystemType } from '../../index.js';
import { flag, printJson, stringOption, type Command } from '../command.js';

const mkfs: Command = {
  name: 'mkfs',
  summary: 'make an ext2/3/4 filesystem image, optionally from a host directory, without root',
  help: `Usage: diskwright mkfs IMAGE --type ext2|ext3|ext4 --size SIZE [--from DIR] [--label L] [--uuid U] [--force]

Creates IMAGE holding a new filesystem made by mke2fs 1.47.0 (WebAssembly; no root, no loop
device, no host e2fsprogs). With --from, the filesystem is filled with DIR's tree (mke2fs -d):
a rootless template build. The image is written beside IMAGE and renamed when complete, and stays
sparse (an 8G image uses a few MB until filled).

Options:
  -t, --type T    ext2, ext3 or ext4 (default ext4)
  -s, --size SIZE size with a unit: 512M, 8G, … (a multiple of 1K)
      --from DIR  copy DIR's files, owners, modes and times into the filesystem
  -L, --label L   volume label (at most 16 bytes)
  -U, --uuid U    filesystem UUID (default: random)
  -f, --force     replace IMAGE if it exists
      --json      print {"output","type","size","from","label"}

Examples:
  diskwright mkfs root.ext3 --type ext3 --size 8G --from ./rootfs --label root
  diskwright mkfs scratch.img --size 512M
`,
  options: {
    type: { type: 'string', short: 't' },
    size: { type: 'string', short: 's' },
    from: { type: 'string' },
    label: { type: 'string', short: 'L' },
    uuid: { type: 'string', short: 'U' },
    force: { type: 'boolean', short: 'f' },
  },
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) throw new DiskwrightError('E_USAGE', 'mkfs: expected exactly one IMAGE argument', { hint: 'diskwright mkfs IMAGE --type ext3 --size 8G' });
    const sizeText = stringOption(args, 'size');
    if (sizeText === undefined) throw new DiskwrightError('E_USAGE', 'mkfs: --size is required', { hint: 'e.g. --size 8G' });
    const size = parseSize(sizeText, 'size');
    const type = (stringOption(args, 'type') ?? 'ext4') as FilesystemType;
    const from = stringOption(args, 'from');
    const label = stringOption(args, 'label');
    const uuid = stringOption(args, 'uuid');
    await makeFilesystem(image, {
      type,
      size,
      force: flag(args, 'force'),
      signal: ctx.signal,
      ...(from !== undefined ? { fromDirectory: from } : {}),
      ...(label !== undefined ? { label } : {}),
      ...(uuid !== undefined ? { uuid } : {}),
    });
    if (ctx.json) printJson(ctx, { output: image, type, size, from: from ?? null, label: label ?? null });
    else ctx.stdout.write(`${image}: ${type} filesystem of ${size} bytes${from !== undefined ? ` from ${from}` : ''}\n`);
    return 0;
  },
};

export const commands: readonly Command[] = [mkfs];
