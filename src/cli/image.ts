import type { ImageAccess } from '../disk/lock.js';
import { withImage } from '../disk/with-image.js';
import { flag, type CommandContext, type ParsedArgs } from './command.js';
import { noteLeaves } from './progress.js';

/**
 * How a command opens the image it works on: the image lock (`--wait` queues behind another
 * diskwright process instead of failing) and the interrupted-commit check (writers roll back,
 * readers refuse). Every command taking an IMAGE runs its work inside this.
 */
export function useImage<T>(args: ParsedArgs, ctx: CommandContext, image: string, access: ImageAccess, fn: () => Promise<T>): Promise<T> {
  // Readers never write it, writers change it only by an atomic commit: an interrupt leaves it as it was.
  noteLeaves(ctx, `${image} unchanged`);
  return withImage(image, { access, wait: flag(args, 'wait'), signal: ctx.signal }, () => fn());
}
