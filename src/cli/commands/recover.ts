import { DiskwrightError } from '../../errors.js';
import { recoverImage } from '../../disk/with-image.js';
import { flag, printJson, type Command } from '../command.js';

const recover: Command = {
  name: 'recover',
  summary: 'roll back a diskwright write that was interrupted (killed, power loss, disk full)',
  help: `Usage: diskwright recover IMAGE [--wait] [--json]

An in-place change (fs put/rm/…, resize, fsck --fix, template steps) writes a record of the old
contents of the blocks it changes beside the image (IMAGE.diskwright-undo) before touching it,
and removes it when done. If the run was killed in between, the record is left: commands that
only read refuse the image until it is rolled back, commands that write roll it back first.
This command does only the rollback: afterwards IMAGE is exactly as before the interrupted run.
It also removes leftover temp files of killed runs (.IMAGE.diskwright-*.tmp).

Options:
      --wait   wait for another diskwright process working on IMAGE instead of failing
      --json   print {"image","rolledBack"}

Examples:
  diskwright recover debbase.img
`,
  options: {},
  async run(args, ctx) {
    const [image, ...extra] = args.positionals;
    if (!image || extra.length > 0) throw new DiskwrightError('E_USAGE', 'recover: expected exactly one IMAGE argument', { hint: 'diskwright recover IMAGE' });
    const rolledBack = await recoverImage(image, { wait: flag(args, 'wait'), signal: ctx.signal });
    if (ctx.json) printJson(ctx, { image, rolledBack });
    else ctx.stdout.write(rolledBack ? `${image}: rolled back an interrupted write; the image is as it was before it\n` : `${image}: no interrupted write to roll back\n`);
    return 0;
  },
};

export const commands: readonly Command[] = [recover];
