import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/**
 * Runs once before the test workers start.
 * - Points TMPDIR at a private directory (workers inherit it) and removes it at the end, so the
 *   scratch images every test makes never outlive the run (by more than their removal), even when
 *   a test forgets its cleanup or a worker is killed.
 * - Builds dist/ so CLI tests can run the real binary. `npm test` builds first (the strict gate)
 *   and sets DISKWRIGHT_PREBUILT so the work is not done twice; a direct `npx vitest run …` builds
 *   here (tsc emits even when another file has type errors).
 */
export default async function setup(): Promise<() => void> {
  const scratch = mkdtempSync(join(tmpdir(), 'diskwright-tests-'));
  process.env.TMPDIR = scratch;
  if (process.env.DISKWRIGHT_PREBUILT !== '1') {
    const tsc = await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { reject: false, all: true });
    if (tsc.exitCode !== 0) process.stderr.write(`global-setup: tsc reported errors (dist built anyway):\n${tsc.all}\n`);
    await execa('node', ['scripts/copy-assets.mjs'], { stdio: 'inherit' });
    await execa('node', ['scripts/cli-manifest.mjs'], { stdio: 'inherit' });
    await execa('node', ['scripts/bundle-cli.mjs'], { stdio: 'inherit' });
  }
  return () => {
    // Not rmSync here: removing a run's images (3,000 files, 3 GB allocated) took 40+ s on a busy
    // machine and blocked vitest's event loop meanwhile — the "Timeout terminating forks worker"
    // and the minute-long wait after the summary (issue 14). A detached process removes them
    // instead; they outlive the run by those seconds only.
    const remover = spawn(process.execPath, ['-e', 'require("node:fs").rmSync(process.argv[1], { recursive: true, force: true })', scratch], { detached: true, stdio: 'ignore' });
    remover.unref();
  };
}
