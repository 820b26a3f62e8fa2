/**
 * Which qcow2 overlays depend on an image (a template that thin instances use as backing file).
 * diskwright keeps one small entry per overlay in `IMAGE.diskwright-overlays/` beside the image;
 * every diskwright writer refuses to change or replace an image that live overlays depend on
 * (E_TEMPLATE_IN_USE), and `instance destroy` removes the entry again. An entry whose overlay is
 * gone (removed by hand) or is another file now is stale and ignored.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DiskwrightError } from '../errors.js';

/** Suffix of the directory beside an image that lists the overlays depending on it. */
export const DEPENDENTS_SUFFIX = '.diskwright-overlays';
/** Entries read at most per image (a registry is hand-sized; this bounds a hostile one). */
const MAX_ENTRIES = 100_000;
/** The file in the registry that keeps the image's mode from before it was made read-only. */
const MODE_FILE = 'mode';

/** The registry directory of `image`. */
export function dependentsDir(image: string): string {
  return `${image}${DEPENDENTS_SUFFIX}`;
}

interface Entry {
  readonly overlay: string;
  readonly dev: number;
  readonly ino: number;
}

function entryName(overlay: string): string {
  return `${createHash('sha256').update(overlay).digest('hex').slice(0, 32)}.json`;
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Records that `overlay` (its final path; it may still be a temp file of the same inode `ino`)
 * depends on `image`. The first dependent also makes the image read-only (write bits cleared, the
 * old mode kept in the registry) so that other tools cannot change it by accident either.
 */
export function registerDependent(image: string, overlay: string, file: { dev: number; ino: number }): void {
  const dir = dependentsDir(realOrSelf(image));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const entry: Entry = { overlay, dev: file.dev, ino: file.ino };
  const name = entryName(overlay);
  const temp = join(dir, `.${name}.${process.pid}.tmp`);
  writeFileSync(temp, `${JSON.stringify(entry)}\n`, { mode: 0o644 });
  renameSync(temp, join(dir, name));
  makeReadOnly(image);
}

/**
 * Clears `image`'s write bits, keeping its old mode in the registry (for the last dependent's
 * removal to restore). A no-op on an image without write bits: a chmod changes the inode's ctime,
 * which is part of a backing file's identity (src/disk/backing-identity.ts) — an overlay maker
 * calls this *before* it records the identity, so that registering the overlay later changes
 * nothing the record holds.
 */
export function makeReadOnly(image: string): void {
  const mode = statSync(image).mode & 0o7777;
  if ((mode & 0o222) === 0) return;
  const dir = dependentsDir(realOrSelf(image));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    writeFileSync(join(dir, MODE_FILE), `${mode.toString(8)}\n`, { flag: 'wx' });
  } catch {
    /* an earlier dependent already saved the mode */
  }
  chmodSync(image, mode & ~0o222);
}

/** Removes `overlay`'s entry; with no live dependent left, the image's old mode comes back. */
export function unregisterDependent(image: string, overlay: string): void {
  const dir = dependentsDir(realOrSelf(image));
  rmSync(join(dir, entryName(overlay)), { force: true });
  restoreIfUnused(image);
}

/**
 * With no live dependent of `image`, its mode from before {@link makeReadOnly} comes back and the
 * registry is removed (an overlay maker that failed before it registered calls this too).
 */
export function restoreIfUnused(image: string): void {
  const dir = dependentsDir(realOrSelf(image));
  if (liveDependents(image).length > 0) return;
  try {
    const saved = Number.parseInt(readFileSync(join(dir, MODE_FILE), 'utf8').trim(), 8);
    if (Number.isInteger(saved) && saved >= 0 && saved <= 0o7777) chmodSync(image, saved);
  } catch {
    /* no mode saved: the image was read-only before */
  }
  rmSync(dir, { recursive: true, force: true });
}

/** The overlays that depend on `image` now (entries whose file is still that overlay). */
export function liveDependents(image: string): string[] {
  const dir = dependentsDir(realOrSelf(image));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const live: string[] = [];
  for (const name of names.slice(0, MAX_ENTRIES)) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    let entry: Partial<Entry>;
    try {
      entry = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<Entry>;
    } catch {
      continue;
    }
    if (typeof entry.overlay !== 'string') continue;
    const info = statSync(entry.overlay, { throwIfNoEntry: false });
    if (info && info.dev === entry.dev && info.ino === entry.ino) live.push(entry.overlay);
  }
  return live.sort();
}

/**
 * Refuses to change or replace `image` while overlays depend on it: their data would then be read
 * over a different image (they are refused afterwards, E_BACKING_CHANGED, but the instances are lost).
 */
export function assertNoDependents(image: string, action: 'write' | 'replace'): void {
  const live = liveDependents(image);
  if (live.length === 0) return;
  const more = live.length > 1 ? ` and ${live.length - 1} more` : '';
  throw new DiskwrightError('E_TEMPLATE_IN_USE', `refusing to ${action} ${image}: thin instance ${live[0]}${more} use it as backing file`, {
    path: image,
    hint: isBasePath(live[0]!)
      ? `it is a shared grown layer of thin instances: \`diskwright instance list --bases --images-dir ${dirname(dirname(live[0]!))}\` shows who uses it, \`--prune\` removes it when nobody does`
      : `destroy those instances first (\`diskwright instance destroy ${basename(live[0]!).replace(/-disk0\.qcow2$/, '')}\`), or copy the template and change the copy`,
  });
}

/** A shared grown layer's path (src/instance/grown-base.ts's BASES_DIR; not imported: layering). */
function isBasePath(path: string): boolean {
  return basename(dirname(path)) === '.diskwright-bases';
}
