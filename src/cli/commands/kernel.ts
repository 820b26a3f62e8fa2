import { DiskwrightError, extractKernel } from '../../index.js';
import { flag, printJson, stringOption, type Command } from '../command.js';
import { FORMAT_OPTION, imageFormat, useImage } from '../image.js';
import { createProgress, noteLeaves } from '../progress.js';
import type { ProgressCallback } from '../../io/progress.js';
import { parsePartitionOption } from './template.js';

const kernel: Command = {
  name: 'kernel',
  summary: 'Copy the newest kernel and its initrd out of an image (no VM, no mount)',
  help: `Usage: diskwright kernel IMAGE [--partition N] -o DIR [--format raw|qcow2] [--force] [--json]

Finds the newest /boot/vmlinuz-* in the image (version order of \`sort -V\`), follows symlinks
(e.g. /vmlinuz → boot/vmlinuz-6.1.0-13-amd64), and copies it with the initrd of the same version
(initrd.img-V, initramfs-V.img, initrd-V) into DIR — what the article did with \`scp\` from a
running VM. IMAGE is a filesystem image (a template) or, with --partition, a disk image. For a
separate /boot partition pass its number: the files are then at its root.

Options:
  -p, --partition N partition of a disk image holding /boot (omit for a filesystem image)
  -o, --output DIR  directory for the files (created if missing)
  -f, --force       replace files of the same name in DIR
  --format F        IMAGE is raw or qcow2, e.g. a cloud image (default: diskwright's record on it,
                    else the qcow2 magic; a probed qcow2's backing file needs --format qcow2)
  --json            print {image, output, version, kernel, initrd} as JSON
  -h, --help        show this help

Examples:
  diskwright kernel debbase.img --partition 1 -o /var/lib/libvirt/kernels
  diskwright kernel debian-tmpl -o kernels/ --json
`,
  options: {
    partition: { type: 'string' },
    output: { type: 'string', short: 'o' },
    force: { type: 'boolean' },
    ...FORMAT_OPTION,
  },
  async run(args, ctx) {
    if (args.positionals.length !== 1) {
      throw new DiskwrightError('E_USAGE', `kernel: expected one IMAGE argument, got ${args.positionals.length}`, { hint: 'run `diskwright kernel --help`' });
    }
    const outDir = stringOption(args, 'output');
    if (outDir === undefined) throw new DiskwrightError('E_USAGE', 'kernel: -o DIR is required', { hint: 'run `diskwright kernel --help`' });
    noteLeaves(ctx, `no kernel written to ${outDir}`);
    // Each file's copy is a step with progress (an initrd can be hundreds of MiB).
    let copying: ReturnType<typeof createProgress> | undefined;
    const onFile = (entry: string): ProgressCallback => {
      copying?.done();
      const progress = createProgress(ctx, `copy ${entry}`);
      copying = progress;
      return (p) => progress.update(p);
    };
    const files = await useImage(args, ctx, args.positionals[0]!, 'read', () =>
      extractKernel(args.positionals[0]!, {
        partition: parsePartitionOption(stringOption(args, 'partition'), false),
        outDir,
        overwrite: flag(args, 'force'),
        signal: ctx.signal,
        onFile,
        ...imageFormat(args),
      }),
    ).finally(() => copying?.done());
    if (ctx.json) printJson(ctx, { image: args.positionals[0], output: outDir, ...files });
    else ctx.stdout.write(`kernel  ${files.kernel}\n${files.initrd ? `initrd  ${files.initrd}\n` : 'initrd  (none found for this version)\n'}`);
    return 0;
  },
};

/** CLI commands of the kernel area. */
export const commands: readonly Command[] = [kernel];
