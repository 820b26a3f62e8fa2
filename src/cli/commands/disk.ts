import { readFile } from 'node:fs/promises';
import { buildDisk, DiskwrightError, formatBytes, parseFilesystemSpec, parseOwner, parseOwnerMap } from '../../index.js';
import { diskSize, flag, printJson, stringOption, type Command } from '../command.js';
import { fillReporter } from '../fill-progress.js';
import { noteLeaves } from '../progress.js';

const build: Command = {
  name: 'disk build',
  summary: 'build a whole partitioned disk image — table, filesystems, swap, contents — in one atomic step, without root',
  help: `Usage: diskwright disk build OUT --size SIZE --layout SCRIPT [--fs N=TYPE[,label=L][,uuid=U][:SRC]]... [--owner O] [--force] [--json]

Builds OUT from nothing, as an ordinary user: a sparse raw image of SIZE, the partition table of
the sfdisk script SCRIPT (the bytes \`sfdisk\` writes; see \`diskwright partition --help\`), then for
each --fs a filesystem filling partition N — ext2, ext3 or ext4, filled from SRC (a directory or a
tar archive: .tar, .tar.gz, .tar.xz, .tar.zst, with owners, modes, xattrs, device nodes and hard
links) — or a swap signature (TYPE swap, as \`mkswap\`). Everything is written to a temp file beside
OUT and renamed when complete: an interrupted build leaves no OUT. Each step is reported on stderr;
the fill shows files and bytes.

Replaces: truncate + sfdisk + mke2fs -d (as root, to keep owners) + dd conv=notrunc + mkswap.

Options:
  -s, --size SIZE      disk size: 8G, 512M, … (whole 512-byte sectors)
      --layout SCRIPT  sfdisk script file (- for stdin)
      --fs SPEC        N=TYPE[,label=L][,uuid=U][:SRC], repeatable: 1=ext3,label=root:rootfs.tar, 5=swap
      --owner O        owner of every copied file: root (0:0, like genext2fs -U) or UID:GID
      --owner-map FILE translate owners instead: lines \`uid FROM TO\` / \`gid FROM TO\`
  -f, --force          replace OUT if it exists
      --json           print {"output","size","label","filesystems":[{"partition","type","offset","size"}]}

Example (the article's seed disk from an mmdebstrap tarball):
  mmdebstrap --mode=unshare bookworm rootfs.tar
  printf 'label: dos\\nsize=7624M, type=83, bootable\\ntype=5\\ntype=82\\n' > seed.sfdisk
  diskwright disk build debbase.img --size 8G --layout seed.sfdisk --fs 1=ext3,label=root:rootfs.tar --fs 5=swap
`,
  options: {
    size: { type: 'string', short: 's' },
    layout: { type: 'string' },
    fs: { type: 'string', multiple: true },
    owner: { type: 'string' },
    'owner-map': { type: 'string' },
    force: { type: 'boolean', short: 'f' },
  },
  async run(args, ctx) {
    const [output, ...extra] = args.positionals;
    if (!output || extra.length > 0) throw new DiskwrightError('E_USAGE', 'disk build: expected exactly one OUT argument', { hint: 'diskwright disk build OUT --size 8G --layout layout.sfdisk --fs 1=ext4:rootfs.tar' });
    const sizeText = stringOption(args, 'size');
    if (sizeText === undefined) throw new DiskwrightError('E_USAGE', 'disk build: --size is required', { hint: 'e.g. --size 8G' });
    const size = diskSize(args, sizeText, 'size');
    const layoutPath = stringOption(args, 'layout');
    if (layoutPath === undefined) throw new DiskwrightError('E_USAGE', 'disk build: --layout is required', { hint: 'an sfdisk script, e.g. from `sfdisk --dump`' });
    const layout = await readFile(layoutPath === '-' ? '/dev/stdin' : layoutPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new DiskwrightError(error.code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot read the layout ${layoutPath}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, { path: layoutPath, cause: error });
    });
    const specs = ((args.values.fs as string[] | undefined) ?? []).map(parseFilesystemSpec);
    const ownerText = stringOption(args, 'owner');
    const ownerMapPath = stringOption(args, 'owner-map');
    if (ownerText !== undefined && ownerMapPath !== undefined) throw new DiskwrightError('E_USAGE', 'disk build: give --owner or --owner-map, not both', { hint: 'a map file can send every id to 0 too' });
    const owner = ownerText !== undefined ? parseOwner(ownerText) : ownerMapPath !== undefined ? parseOwnerMap(await readFile(ownerMapPath, 'utf8'), ownerMapPath) : undefined;
    // Built in a temp file renamed when complete: an interrupt leaves no OUT (or the old one).
    noteLeaves(ctx, `no ${output} written`);
    let progress: ReturnType<typeof fillReporter> | undefined;
    const started = performance.now();
    try {
      const result = await buildDisk(output, {
        size,
        layout,
        filesystems: specs,
        force: flag(args, 'force'),
        signal: ctx.signal,
        ...(owner !== undefined ? { owner } : {}),
        onStep: (step) => {
          progress?.done();
          progress = fillReporter(ctx, `[${step.index}/${step.count}] ${step.title}`);
          if (ctx.json) ctx.stderr.write(`${JSON.stringify({ event: 'step', index: step.index, count: step.count, title: step.title })}\n`);
          else ctx.stderr.write(`diskwright: [${step.index}/${step.count}] ${step.title}\n`);
        },
        onFillProgress: (p) => progress?.update(p),
      });
      progress?.done();
      if (ctx.json) {
        printJson(ctx, { output, size, label: result.layout.label, filesystems: result.filesystems.map((f) => ({ partition: f.partition, type: f.type, offset: f.offset, size: f.size })) });
      } else {
        ctx.stdout.write(`${output}: ${formatBytes(size)} ${result.layout.label} disk, ${result.filesystems.map((f) => `${f.partition}=${f.type}`).join(' ') || 'no filesystems'} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
      }
    } finally {
      progress?.done();
    }
    return 0;
  },
};

export const commands: readonly Command[] = [build];
