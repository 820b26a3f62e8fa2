import { refuseBlocking } from '../disk/file-kind.js';
import type { ImageAccess } from '../disk/lock.js';
import type { DiskFormat } from '../disk/types.js';
import { withImage } from '../disk/with-image.js';
import { InvalidArgumentError } from '../errors.js';
import { flag, stringOption, type CommandContext, type ParsedArgs } from './command.js';
import { noteLeaves } from './progress.js';

/**
 * How a command opens the image it works on: the image lock (`--wait` queues behind another
 * diskwright process instead of failing) and the interrupted-commit check (writers roll back,
 * readers refuse). Every command taking an IMAGE runs its work inside this.
 */
export function useImage<T>(args: ParsedArgs, ctx: CommandContext, image: string, access: ImageAccess, fn: () => Promise<T>): Promise<T> {
  assertNotBlocking(image);
  // Readers never write it, writers change it only by an atomic commit: an interrupt leaves it as it was.
  noteLeaves(ctx, `${image} unchanged`);
  return withImage(image, { access, wait: flag(args, 'wait'), signal: ctx.signal }, () => fn());
}

/**
 * A FIFO, socket or terminal as IMAGE: opening or reading it blocks the main thread (info, convert
 * and resize waited in open(2) for a writer that never came, deaf to Ctrl-C and SIGTERM), so it is
 * refused before anything opens it. A missing path or a directory is left to the command's own message.
 */
function assertNotBlocking(image: string): void {
  refuseBlocking(image, { hint: 'pass the path of a disk or filesystem image file' });
}

/** `--format` / `-O` values. */
export function formatOption(args: ParsedArgs, name: string): DiskFormat | undefined {
  const value = stringOption(args, name);
  if (value === undefined) return undefined;
  if (value !== 'raw' && value !== 'qcow2') throw new InvalidArgumentError(`Expected \`--${name}\` to be raw or qcow2, got \`${value}\``);
  return value;
}

/** `--format`, the same option on every command that takes an image (`-f` is --force). */
export const FORMAT_OPTION = { format: { type: 'string' } } as const;

/** The help line of {@link FORMAT_OPTION}. */
export const FORMAT_HELP = `      --format F     IMAGE is raw or qcow2 (default: the format diskwright recorded on it, else the
                     qcow2 magic; a probed qcow2's backing file is followed only with --format qcow2)`;

/** `--format` as an options fragment to spread (`{}` when not given). */
export function imageFormat(args: ParsedArgs): { format?: DiskFormat } {
  const format = formatOption(args, 'format');
  return format ? { format } : {};
}
