// Runs e2fsprogs' tests/ in a mirror of the native build tree: tests/ is a fresh copy, every other
// top-level entry a symlink into the build, and in the tool directories each program is a symlink
// too — except the ones swapped for the WebAssembly wrapper. The suite reaches its programs as
// `../e2fsck/e2fsck`, `../misc/mke2fs` … (tests/test_config, and a few scripts directly), so the
// wrapper sits at exactly those paths and argv[0] is what the suite typed.
import { spawn } from 'node:child_process';
import { copyFileSync, chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/** The programs diskwright ships as WebAssembly, at the paths the suite runs them from. */
export const SWAPPED = ['e2fsck/e2fsck', 'misc/mke2fs', 'misc/tune2fs', 'misc/dumpe2fs', 'misc/e2undo', 'resize/resize2fs', 'debugfs/debugfs'];
/** Leftovers of an earlier run inside tests/ (test_one's own result files). */
const RESULT_FILE = /\.(ok|failed|log|new|slow|tmp)$/;

/** Builds the run tree `dest` over the native `build`; `wrapper` replaces the SWAPPED programs. */
export function mirrorTree(build, dest, wrapper) {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  const swapped = wrapper ? SWAPPED : [];
  const toolDirs = new Set(swapped.map((p) => p.split('/')[0]));
  for (const entry of readdirSync(build)) {
    if (entry === 'tests') {
      cpSync(join(build, 'tests'), join(dest, 'tests'), { recursive: true, preserveTimestamps: true });
      for (const file of readdirSync(join(dest, 'tests'))) {
        if (RESULT_FILE.test(file) && file !== 'test_data.tmp') rmSync(join(dest, 'tests', file), { force: true });
      }
    } else if (toolDirs.has(entry)) {
      mkdirSync(join(dest, entry));
      for (const file of readdirSync(join(build, entry))) {
        const rel = `${entry}/${file}`;
        if (swapped.includes(rel)) {
          copyFileSync(wrapper, join(dest, rel));
          chmodSync(join(dest, rel), 0o755);
        } else symlinkSync(join(build, rel), join(dest, rel));
      }
    } else symlinkSync(join(build, entry), join(dest, entry));
  }
  for (const rel of swapped) {
    if (!existsSync(join(dest, rel))) throw new Error(`the native build has no ${rel} to stand in for`);
  }
  mkdirSync(join(dest, 'tmp'));
}

/** The suite's tests: the `[a-z]_*` directories of tests/, as make's `$(wildcard)` finds them. */
export function listTests(testsDir) {
  return readdirSync(testsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[a-z]_/.test(e.name))
    .map((e) => e.name)
    .sort();
}

/**
 * Runs `./test_one --skip-slow-tests ./NAME` (what `make check` runs per test) for each test,
 * `jobs` at a time, longest first by `previous` timings. Resolves with per-test results:
 * status 'ok' | 'failed' | 'skipped', seconds, and the test's own output line(s).
 */
export async function runTests(tree, tests, { jobs, timeoutSeconds, previous = {}, env, onResult }) {
  const testsDir = join(tree, 'tests');
  const queue = [...tests].sort((a, b) => (previous[b] ?? 0) - (previous[a] ?? 0) || a.localeCompare(b));
  const results = {};
  const started = performance.now();
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const t0 = performance.now();
      const { output, timedOut } = await runOne(testsDir, name, { env: { ...env, TMPDIR: join(tree, 'tmp') }, timeoutSeconds });
      const seconds = (performance.now() - t0) / 1000;
      let status = 'skipped';
      let detail = '';
      if (timedOut) {
        status = 'failed';
        detail = `timed out after ${timeoutSeconds} s`;
      } else if (existsSync(join(testsDir, `${name}.failed`))) {
        status = 'failed';
        detail = readFileSync(join(testsDir, `${name}.failed`), 'utf8');
      } else if (existsSync(join(testsDir, `${name}.ok`))) status = 'ok';
      results[name] = { status, seconds, output: output.trim(), detail };
      onResult?.(name, results[name]);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return { results, seconds: (performance.now() - started) / 1000 };
}

function runOne(testsDir, name, { env, timeoutSeconds }) {
  return new Promise((resolve, reject) => {
    // Own process group, so a timeout also ends the tools the test started. Stdin is /dev/null, as
    // under make in CI: nothing may wait for a terminal.
    const child = spawn('./test_one', ['--skip-slow-tests', `./${name}`], { cwd: testsDir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutSeconds * 1000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ output: Buffer.concat(chunks).toString('utf8'), timedOut });
    });
  });
}
