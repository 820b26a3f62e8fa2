import { execa } from 'execa';

/**
 * Builds dist/ so CLI tests can run the real binary. tsc emits even when another area has type
 * errors; `npm test` itself runs `npm run build` first, which is the strict gate.
 */
export default async function setup(): Promise<void> {
  const tsc = await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { reject: false, all: true });
  if (tsc.exitCode !== 0) process.stderr.write(`global-setup: tsc reported errors (dist built anyway):\n${tsc.all}\n`);
  await execa('node', ['scripts/copy-assets.mjs'], { stdio: 'inherit' });
}
