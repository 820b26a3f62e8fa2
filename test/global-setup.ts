import { execa } from 'execa';

/**
 * Builds dist/ so CLI tests can run the real binary. `npm test` builds first (the strict gate) and
 * sets DISKWRIGHT_PREBUILT so the work is not done twice; a direct `npx vitest run …` builds here
 * (tsc emits even when another file has type errors, so one broken area does not block the rest).
 */
export default async function setup(): Promise<void> {
  if (process.env.DISKWRIGHT_PREBUILT === '1') return;
  const tsc = await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { reject: false, all: true });
  if (tsc.exitCode !== 0) process.stderr.write(`global-setup: tsc reported errors (dist built anyway):\n${tsc.all}\n`);
  await execa('node', ['scripts/copy-assets.mjs'], { stdio: 'inherit' });
}
