import type { Command } from '../command.js';
import { commands as create } from './create.js';
import { commands as partitions } from './partitions.js';
import { commands as extract } from './extract.js';
import { commands as fsck } from './fsck.js';
import { commands as mkfs } from './mkfs.js';
import { commands as resize } from './resize.js';
import { commands as info } from './info.js';
import { commands as fs } from './fs.js';
import { commands as kernel } from './kernel.js';
import { commands as template } from './template.js';
import { commands as instance } from './instance.js';
import { commands as demo } from './demo.js';

/** Every CLI command, in the order `diskwright --help` lists them. Each area owns its file. */
export const commands: readonly Command[] = [
  ...demo,
  ...create,
  ...partitions,
  ...extract,
  ...fsck,
  ...mkfs,
  ...resize,
  ...info,
  ...fs,
  ...kernel,
  ...template,
  ...instance,
];
