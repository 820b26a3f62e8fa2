import type { Command } from '../command.js';

/** A file of commands, imported only when one of its commands runs (fast start). */
export interface CommandModule {
  /** File name beside this one, recorded in the build's manifest.json. */
  readonly file: string;
  load(): Promise<{ readonly commands: readonly Command[] }>;
}

/**
 * Every CLI command file, in the order `diskwright --help` lists them. Each area owns its file.
 * Add a file here as `{ file: 'x.js', load: () => import('./x.js') }` — never import it statically:
 * `npm run build` records names, help and options in manifest.json so `--help` and option errors
 * need no command module, and running a command loads only its own file.
 */
export const commandModules: readonly CommandModule[] = [
  { file: 'demo.js', load: () => import('./demo.js') },
  { file: 'create.js', load: () => import('./create.js') },
  { file: 'partitions.js', load: () => import('./partitions.js') },
  { file: 'partition.js', load: () => import('./partition.js') },
  { file: 'disk.js', load: () => import('./disk.js') },
  { file: 'extract.js', load: () => import('./extract.js') },
  { file: 'convert.js', load: () => import('./convert.js') },
  { file: 'fsck.js', load: () => import('./fsck.js') },
  { file: 'mkfs.js', load: () => import('./mkfs.js') },
  { file: 'resize.js', load: () => import('./resize.js') },
  { file: 'info.js', load: () => import('./info.js') },
  { file: 'fs.js', load: () => import('./fs.js') },
  { file: 'kernel.js', load: () => import('./kernel.js') },
  { file: 'template.js', load: () => import('./template.js') },
  { file: 'instance.js', load: () => import('./instance.js') },
  { file: 'recover.js', load: () => import('./recover.js') },
];
