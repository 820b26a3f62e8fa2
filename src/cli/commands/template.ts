import {
  DiskwrightError,
  InvalidArgumentError,
  makeTemplate,
  readTemplateManifest,
  templateOperations,
  type TemplateManifest,
} from '../../index.js';
import { flag, printJson, stringOption, type Command, type CommandContext, type ParsedArgs } from '../command.js';
import { FORMAT_OPTION, formatOption, imageFormat, useImage } from '../image.js';
import { createProgress, createStepReporter, noteLeaves } from '../progress.js';

/** `--ops a,b` → ['a','b']; empty items are a usage error. */
export function parseOperationList(value: string | undefined, option: string): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) {
    throw new InvalidArgumentError(`${option}: expected a comma-separated list of operation names, got \`${value}\``, {
      hint: 'see `diskwright template ops` for the names',
    });
  }
  return names;
}

/** A partition number from `--partition`. */
export function parsePartitionOption(value: string | undefined, required: boolean): number | undefined {
  if (value === undefined) {
    if (required) throw new DiskwrightError('E_USAGE', '--partition N is required', { hint: 'see `diskwright partitions DISK` for the numbers' });
    return undefined;
  }
  if (!/^[1-9][0-9]{0,5}$/.test(value)) {
    throw new InvalidArgumentError(`Expected \`--partition\` to be a partition number, got \`${value}\``, { hint: 'see `diskwright partitions DISK`' });
  }
  return Number(value);
}

/** `-O raw|qcow2` as makeTemplate's `outputFormat` (validated like every format option). */
function outputFormat(args: ParsedArgs): { outputFormat?: 'raw' | 'qcow2' } {
  const format = formatOption(args, 'output-format');
  return format === undefined ? {} : { outputFormat: format };
}

function onePositional(args: ParsedArgs, command: string, what: string): string {
  if (args.positionals.length !== 1) {
    throw new DiskwrightError('E_USAGE', `${command}: expected one ${what} argument, got ${args.positionals.length}`, {
      hint: `run \`diskwright ${command} --help\``,
    });
  }
  return args.positionals[0]!;
}

function printManifest(ctx: CommandContext, template: string, manifest: TemplateManifest): void {
  const out: string[] = [
    `template    ${template}`,
    `created     ${manifest.createdAt}`,
    `source      ${manifest.source.disk} partition ${manifest.source.partition} (start ${manifest.source.start}, ${manifest.source.sectors} sectors)`,
    `filesystem  ${manifest.filesystem.kind} ${manifest.filesystem.uuid}, ${manifest.filesystem.blocksCount} blocks of ${manifest.filesystem.blockSize}`,
  ];
  if (manifest.kernel) {
    out.push(`kernel      ${manifest.kernel.version}: ${manifest.kernel.kernel}${manifest.kernel.initrd ? `, ${manifest.kernel.initrd}` : ''}`);
  }
  out.push('', 'placeholders:');
  if (manifest.files.length === 0) out.push('  (none)');
  for (const file of manifest.files) out.push(`  ${file.path}  ${file.placeholders.join(' ')}`);
  out.push('', 'operations:');
  const width = Math.max(...manifest.operations.map((op) => op.name.length), 4);
  for (const op of manifest.operations) {
    out.push(`  ${op.name.padEnd(width)}  ${op.status.padEnd(14)}  ${op.detail ?? ''}`.trimEnd());
  }
  ctx.stdout.write(`${out.join('\n')}\n`);
}

const make: Command = {
  name: 'template make',
  summary: 'Extract a partition into a template and templatize it (placeholders, sysprep) without mounting',
  help: `Usage: diskwright template make DISK --partition N -o TEMPLATE [--ops a,b] [--skip c]
                                [--kernel-dir DIR] [--interface NAME] [--replay-journal] [--format raw|qcow2]
                                [-O raw|qcow2] [--force] [--json]

Copies partition N of the disk image out (sparse, byte-identical to the article's
\`dd skip=START count=SECTORS bs=512\`), then edits the copy in place — no mount, chroot or root —
with the operations listed by \`diskwright template ops\`: placeholders ADDRESS-TMPL, NETMASK-TMPL,
GATEWAY-TMPL, HOSTNAME-TMPL, NAMESERVER-TMPL (and PREFIX-TMPL, derived from the netmask, for
netplan/NetworkManager) in the network files, an emptied machine-id, no SSH host keys, a serial
console. Writes TEMPLATE.diskwright.json beside it: which files carry which placeholders and what
each operation did. All outputs appear only when every step succeeded; the source disk is only read.
DISK may be a qcow2 (a cloud image). The template is a raw filesystem image, or with -O qcow2 a
qcow2 holding it (\`instance create\` takes both).

Options:
  -p, --partition N partition holding the root filesystem (see \`diskwright partitions DISK\`)
  -o, --output PATH template file to write
  --ops a,b         run only these operations
  --skip c,d        do not run these operations
  --kernel-dir DIR  also copy the newest /boot/vmlinuz-* and its initrd to DIR (recorded in the
                    manifest; \`instance create\` uses them by default)
  --interface NAME  the NIC name the network configuration is written for (default eth0, and
                    instances boot with net.ifnames=0 so their first NIC is eth0 whatever the
                    hardware; with another name, instances keep the kernel's predictable names)
  --replay-journal  replay the journal of a filesystem that was not cleanly unmounted (in the
                    template copy only; without it such a filesystem is refused)
  --format F        DISK is raw or qcow2 (default: diskwright's record on it, else the qcow2
                    magic; a probed qcow2's backing file is followed only with --format qcow2)
  -O, --output-format F
                    the template's format: raw (default) or qcow2 (the finished filesystem image
                    converted as \`diskwright convert -O qcow2\` does; free space takes no clusters)
  -f, --force       replace an existing template, manifest and kernel files
  --json            print {output, ...the manifest} as JSON (docs/json.md)
  -h, --help        show this help

Examples:
  diskwright template make debbase.img --partition 1 -o debian-tmpl --kernel-dir kernels/
  diskwright template make debbase.img --partition 1 -o debian-tmpl --skip ssh-host-keys,netplan
  diskwright template make cloud.qcow2 --partition 1 -o debian-tmpl.qcow2 -O qcow2
`,
  options: {
    partition: { type: 'string' },
    output: { type: 'string', short: 'o' },
    ops: { type: 'string' },
    skip: { type: 'string' },
    'kernel-dir': { type: 'string' },
    interface: { type: 'string' },
    'replay-journal': { type: 'boolean' },
    force: { type: 'boolean' },
    'output-format': { type: 'string', short: 'O' },
    ...FORMAT_OPTION,
  },
  async run(args, ctx) {
    const disk = onePositional(args, 'template make', 'DISK');
    const partition = parsePartitionOption(stringOption(args, 'partition'), true)!;
    const output = stringOption(args, 'output');
    if (output === undefined) throw new DiskwrightError('E_USAGE', 'template make: -o TEMPLATE is required', { hint: 'run `diskwright template make --help`' });
    // The copy's bar is created when its step starts (it names the running step until done).
    let progress: ReturnType<typeof createProgress> | undefined;
    const report = createStepReporter(ctx);
    noteLeaves(ctx, `no ${output} written`);
    let manifest: TemplateManifest;
    try {
      manifest = await useImage(args, ctx, disk, 'read', () =>
        makeTemplate(disk, {
          partition,
          output,
          ops: parseOperationList(stringOption(args, 'ops'), '--ops'),
          skip: parseOperationList(stringOption(args, 'skip'), '--skip'),
          kernelDir: stringOption(args, 'kernel-dir'),
          interface: stringOption(args, 'interface'),
          overwrite: flag(args, 'force'),
          replayJournal: flag(args, 'replay-journal'),
          ...imageFormat(args),
          ...outputFormat(args),
          signal: ctx.signal,
          onProgress: (p) => progress?.update(p),
          onStep: (event) => {
            if (event.phase === 'done') progress?.done();
            report(event);
            if (event.phase === 'start' && event.step.startsWith('extract ')) progress = createProgress(ctx, event.step);
          },
        }),
      );
    } finally {
      progress?.done();
    }
    if (ctx.json) printJson(ctx, { output, ...manifest });
    else printManifest(ctx, output, manifest);
    return 0;
  },
};

const ops: Command = {
  name: 'template ops',
  summary: 'List the template operations (names for --ops / --skip)',
  help: `Usage: diskwright template ops [--json]

Lists the operations \`diskwright template make\` runs, in order, with what each does. Every
operation is idempotent and reports "applied" or "not-applicable" (e.g. no /etc/inittab on a
systemd image). Select with --ops a,b or leave some out with --skip c.

Examples:
  diskwright template ops
  diskwright template ops --json | jq -r '.[].name'
`,
  options: {},
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new DiskwrightError('E_USAGE', 'template ops takes no arguments', { hint: 'run `diskwright template ops --help`' });
    if (ctx.json) {
      printJson(ctx, templateOperations);
      return 0;
    }
    const width = Math.max(...templateOperations.map((op) => op.name.length));
    ctx.stdout.write(`${templateOperations.map((op) => `${op.name.padEnd(width)}  ${op.description}`).join('\n')}\n`);
    return 0;
  },
};

const show: Command = {
  name: 'template show',
  summary: 'Show a template\'s manifest: placeholders per file and what was done',
  help: `Usage: diskwright template show TEMPLATE [--json]

Prints the manifest written by \`diskwright template make\` (TEMPLATE.diskwright.json): source
partition, filesystem, kernel files, the files carrying placeholders, and each operation's status.

Examples:
  diskwright template show debian-tmpl
  diskwright template show debian-tmpl --json | jq '.files'
`,
  options: {},
  async run(args, ctx) {
    const template = onePositional(args, 'template show', 'TEMPLATE');
    // A reader of the template: refused while it has an interrupted write or a half-renamed set.
    const manifest = await useImage(args, ctx, template, 'read', () => readTemplateManifest(template));
    if (ctx.json) printJson(ctx, manifest);
    else printManifest(ctx, template, manifest);
    return 0;
  },
};

/** CLI commands of the template area. */
export const commands: readonly Command[] = [make, ops, show];
