import type { Command, CommandContext } from '../command.js';
import { flag, printJson, stringOption } from '../command.js';
import { createProgress } from '../progress.js';
import { runDemo, type DemoReporter } from '../../index.js';

const help = `Usage: diskwright demo [--dir DIR] [--no-boot] [--json]

Runs the whole job on a built-in default, as an ordinary user (no root, no libvirt):
  1. fetches a Debian kernel (apt-get download, cached in ~/.cache/diskwright/boot) and builds a
     small initramfs,
  2. builds the demo root tree (busybox-static + Debian-like /etc),
  3. makes a seed-like disk (MBR: p1 ext3 at sector 2048, logical swap) with mkfs --from,
  4. lists its partitions, 5. makes a template, 6. creates an instance disk (--disk-only),
  7. shows the rendered /etc files, 8. the virt-install command it would run, and
  9. boots the instance under QEMU (TCG) when qemu-system-x86_64 is installed.
The files stay in DIR (default: a new directory under the system temp dir) for you to inspect.

Options:
  --dir DIR    work in DIR (created; must be empty)
  --no-boot    stop before the QEMU boot
  --json       print the result as JSON (progress as JSON lines on stderr)

Example:
  diskwright demo --dir /tmp/dw-demo
`;

function textReporter(ctx: CommandContext): DemoReporter {
  let index = 0;
  const out = (text: string): void => {
    if (!ctx.json) ctx.stdout.write(text);
  };
  return {
    step(title, explanation) {
      index += 1;
      out(`\n[${index}/9] ${title}\n      ${explanation}\n`);
    },
    detail(lines) {
      for (const line of typeof lines === 'string' ? [lines] : lines) out(`      ${line}\n`);
    },
    progress(label) {
      const bar = createProgress(ctx, label);
      return { update: (p) => bar.update(p), done: () => bar.done() };
    },
    note(message) {
      if (ctx.json) ctx.stderr.write(`${JSON.stringify({ event: 'note', message })}\n`);
      else out(`      note: ${message}\n`);
    },
  };
}

export const commands: readonly Command[] = [
  {
    name: 'demo',
    summary: 'Run the whole job on a built-in demo disk: seed disk → template → instance → QEMU boot',
    help,
    options: { dir: { type: 'string' }, 'no-boot': { type: 'boolean' } },
    async run(args, ctx) {
      const dir = stringOption(args, 'dir');
      const result = await runDemo({
        ...(dir === undefined ? {} : { dir }),
        boot: !flag(args, 'no-boot'),
        env: ctx.env,
        signal: ctx.signal,
        reporter: textReporter(ctx),
      });
      if (ctx.json) {
        printJson(ctx, result);
      } else {
        const bootLine =
          result.boot.status === 'booted'
            ? `the instance booted and showed its identity (${result.boot.seconds?.toFixed(1)} s)`
            : `boot ${result.boot.status}${result.boot.reason ? `: ${result.boot.reason}` : ''}`;
        ctx.stdout.write(`\nDone: ${bootLine}.\nEverything is in ${result.dir} (summary: demo.json).\n`);
      }
      return result.boot.status === 'failed' ? 1 : 0;
    },
  },
];
