import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Shared grown layers are read-only (0444) and pruning takes a write lock, which needs a descriptor
// open for writing: as a non-root owner that open failed (EACCES), so a stale layer — and its
// template's read-only mode — could never be removed. Root bypasses the permission, so as root the
// prune runs in a child dropped to nobody (setpriv), the way an unprivileged user runs it.
const NOBODY = 65534;
const repo = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = 'const m = await import(process.argv[1]); console.log(JSON.stringify(await m.pruneSharedBase(process.argv[2])));';

/** A copy of dist/ and node_modules/ that nobody can read, unless the repository already is readable to others. */
function readableRepo(scratch: string): string {
  const asNobody = (path: string): boolean => {
    try {
      execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'test', '-r', path]);
      return true;
    } catch {
      return false;
    }
  };
  if (asNobody(join(repo, 'dist/instance/grown-base.js')) && asNobody(join(repo, 'node_modules/fs-native-extensions/package.json'))) return repo;
  const copy = join(scratch, 'repo');
  for (const part of ['dist', 'node_modules', 'package.json']) cpSync(join(repo, part), join(copy, part), { recursive: true });
  chmodSync(scratch, 0o755);
  return copy;
}

describe('instance list --bases --prune as a non-root user', () => {
  it('removes its own stale read-only shared layer (the write lock needs write permission, given back only for the removal)', async () => {
    // Not under the run's temp root (TMPDIR, 0700, root's): nobody must reach the layer's directory.
    const dir = mkdtempSync(join('/tmp', 'diskwright-prune-'));
    try {
    const bases = join(dir, 'images', '.diskwright-bases');
    mkdirSync(bases, { recursive: true });
    const layer = join(bases, 'tmpl-10737418240-0123456789abcdef.qcow2');
    writeFileSync(layer, 'a stale layer');
    const uid = process.getuid?.() ?? 0;
    let prune: () => string;
    if (uid === 0) {
      for (const path of [dir, dirname(bases), bases, layer]) chownSync(path, NOBODY, NOBODY);
      chmodSync(layer, 0o444);
      const root = readableRepo(dir);
      const module = pathToFileURL(join(root, 'dist/instance/grown-base.js')).href;
      prune = () => execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--input-type=module', '-e', SCRIPT, module, layer], { encoding: 'utf8' });
    } else {
      chmodSync(layer, 0o444);
      const module = pathToFileURL(join(repo, 'dist/instance/grown-base.js')).href;
      prune = () => execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT, module, layer], { encoding: 'utf8' });
    }
    expect(statSync(layer).mode & 0o777).toBe(0o444);
    expect(prune().trim()).toBe('true');
    expect(existsSync(layer)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
