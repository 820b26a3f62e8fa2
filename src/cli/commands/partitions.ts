// Direct area imports, not the library barrel: this command must start fast (bench/cli-start.mjs).
import { DiskwrightError } from '../../errors.js';
import { formatSfdiskJson, formatSfdiskList, readPartitionTable } from '../../partition/index.js';
import type { Command } from '../command.js';
import { useImage } from '../image.js';
import { formatOption } from './convert.js';

const partitions: Command = {
  name: 'partitions',
  summary: 'List the partitions of a disk image (what `sfdisk -l` / `sfdisk --json` print)',
  help: `Usage: diskwright partitions IMAGE [--json]

Reads the partition table of a raw disk image — dos (MBR, with the logical partitions of an
extended partition numbered 5, 6, …) or GPT (primary, or the backup when the primary is damaged) —
without root, loop devices or sfdisk. Only the table sectors are read.

Output is what util-linux 2.38 prints for the same image:
  (default)  the listing of \`sfdisk -l -uS IMAGE\`: disk size, label, identifier, and
             Device / Boot / Start / End / Sectors / Size / Id / Type (dos) or
             Device / Start / End / Sectors / Size / Type (gpt), in 512-byte sectors
  --json     the JSON of \`sfdisk --json IMAGE\`: partitiontable.label/id/device/unit/
             sectorsize/partitions[{node,start,size,type,bootable,uuid,name,attrs}]

Problems that do not stop reading (overlapping partitions, a damaged backup GPT, a logical
partition outside its extended partition) are printed to stderr as warnings; exit status stays 0.
A missing or unreadable table (truncated image, no 0x55AA signature, looping EBR chain, both GPT
copies damaged) is a one-line error and exit status 1.

A qcow2 image is read as its guest sees it; its format is probed by magic unless diskwright
recorded it, and a probed qcow2's backing file is followed only with --format qcow2 (docs/qcow2.md).

Options:
  --format F print the table of IMAGE read as raw or qcow2
  --json     print sfdisk's JSON instead of the listing
  --debug    show the stack of an error
  -h, --help show this help

Examples:
  diskwright partitions debbase.img
  diskwright partitions debbase.img --json | jq '.partitiontable.partitions[0].start'
`,
  options: { format: { type: 'string' } },
  async run(args, ctx) {
    if (args.positionals.length !== 1) {
      throw new DiskwrightError('E_USAGE', `partitions: expected one IMAGE argument, got ${args.positionals.length}`, {
        hint: 'run `diskwright partitions --help`',
      });
    }
    const image = args.positionals[0]!;
    const format = formatOption(args, 'format');
    const table = await useImage(args, ctx, image, 'read', () => readPartitionTable(image, format ? { format } : {}));
    for (const warning of table.warnings) ctx.stderr.write(`diskwright: warning: ${warning}\n`);
    ctx.stdout.write(ctx.json ? formatSfdiskJson(table, image) : formatSfdiskList(table, image));
    return 0;
  },
};

/** CLI commands of the partition area. */
export const commands: readonly Command[] = [partitions];
