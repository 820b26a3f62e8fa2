import { readFile, stat } from 'node:fs/promises';
import { DiskwrightError, formatSfdiskJson, formatSfdiskList, writePartitionTable } from '../../index.js';
import type { Command } from '../command.js';
import { useImage } from '../image.js';

/** Reads all of stdin as text (the script when SCRIPT is `-` or omitted). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const partition: Command = {
  name: 'partition',
  summary: 'write a dos (MBR) or GPT partition table from an sfdisk script, as `sfdisk IMAGE < SCRIPT` does',
  help: `Usage: diskwright partition IMAGE [SCRIPT|-] [--json]

Writes a new partition table on the raw image IMAGE from an sfdisk script (read from SCRIPT, or
stdin when SCRIPT is - or omitted). The bytes are those util-linux 2.38's \`sfdisk IMAGE < SCRIPT\`
writes on the same blank image: same 1 MiB alignment, same defaults, same EBR chain and GPT
headers. Any old table is replaced; the image is rewritten atomically (a sparse copy beside it,
renamed over it), so an interrupted run leaves the old image.

The script is what \`sfdisk --dump\` prints:
  label: dos|gpt            (default dos)
  label-id: 0x1234abcd      (dos) or a GUID (gpt); random when omitted
  first-lba: / last-lba: / table-length:   (gpt)
  unit: sectors, device:, sector-size: 512
then one line per partition, in either form:
  [NODE :] start=S, size=N, type=T, bootable, name="N", uuid=U, attrs="A"
  S, N, T, *
start/size in sectors, or with a unit (100M, 1G); omitted, - or + = the default (next aligned
free sector; the rest of the free space). A NODE ending in a number (disk.img5) picks the
partition number. Types: hex (83, 82, 5, ef) or L S E X U R V for dos; a GUID or L S H U R V
(linux, swap, home, uefi, raid, lvm) for gpt. A dos partition starting inside the extended one
is logical (5, 6, …).

A bad script (overlaps, beyond the disk, unknown types, a fifth primary, a malformed line) is a
one-line error naming the line; nothing is written.

Options:
  --json     print the new table as \`sfdisk --json\` does (default: the \`sfdisk -l\` listing)
  -h, --help show this help

Examples:
  diskwright create disk.img --size 8G
  printf 'label: dos\\nsize=7G, type=83, bootable\\ntype=5\\ntype=82\\n' | diskwright partition disk.img
  sfdisk --dump old.img > layout.sfdisk && diskwright partition new.img layout.sfdisk
`,
  options: {},
  async run(args, ctx) {
    const [image, scriptPath, ...extra] = args.positionals;
    if (!image || extra.length > 0) {
      throw new DiskwrightError('E_USAGE', 'partition: expected IMAGE and at most one SCRIPT argument', { hint: 'diskwright partition IMAGE layout.sfdisk' });
    }
    // Check the image before waiting on stdin: a typo must not leave the command hanging.
    await stat(image).catch((error: NodeJS.ErrnoException) => {
      throw new DiskwrightError(error.code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `${image}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, {
        path: image,
        hint: 'create the image first: diskwright create IMAGE --size 8G',
        cause: error,
      });
    });
    let text: string;
    if (scriptPath === undefined || scriptPath === '-') text = await readStdin();
    else {
      text = await readFile(scriptPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new DiskwrightError(error.code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot read the script ${scriptPath}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, { path: scriptPath, cause: error });
      });
    }
    // A writer: an interrupted commit is rolled back before the table is rewritten.
    const result = await useImage(args, ctx, image, 'write', () => writePartitionTable(image, text, { signal: ctx.signal }));
    for (const note of result.ignored) ctx.stderr.write(`diskwright: note: script line ${note.line} ignored: ${note.reason}\n`);
    for (const warning of result.table.warnings) ctx.stderr.write(`diskwright: warning: ${warning}\n`);
    ctx.stdout.write(ctx.json ? formatSfdiskJson(result.table, image) : formatSfdiskList(result.table, image));
    return 0;
  },
};

export const commands: readonly Command[] = [partition];
