import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TreeSpec } from './memory-fs.js';

/** fixtures/debian12: real files extracted from the Debian 12 packages (fixtures/debian12/extract.sh). */
export const DEBIAN12_FIXTURES = fileURLToPath(new URL('../../fixtures/debian12/', import.meta.url));

/** Reads one real Debian file as text. */
export function debianFile(path: string): Promise<string> {
  return readFile(join(DEBIAN12_FIXTURES, path), 'utf8');
}

/** The fixture files under `dirs` (in-image paths) as a memory-fs tree spec, modes kept, owned by root. */
export async function debianTree(dirs: readonly string[]): Promise<TreeSpec> {
  const spec: TreeSpec = {};
  const walk = async (path: string): Promise<void> => {
    const host = join(DEBIAN12_FIXTURES, path);
    const info = await lstat(host);
    if (info.isSymbolicLink()) spec[path] = { symlink: await readlink(host) };
    else if (info.isDirectory()) for (const name of await readdir(host)) await walk(`${path}/${name}`);
    else spec[path] = { content: await readFile(host), mode: info.mode & 0o7777 };
  };
  for (const dir of dirs) await walk(dir);
  return spec;
}
