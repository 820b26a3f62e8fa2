import { execa } from 'execa';

/**
 * Oracle tools must exist: in CI a missing tool is a failure, not a skip (.ci/run installs them).
 * Call at the top of an oracle test file; it throws with the package to install.
 */
export async function requireTool(tool: string, pkg: string): Promise<string> {
  const result = await execa('sh', ['-c', 'command -v "$1"', 'sh', tool], { reject: false, env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  if (result.exitCode !== 0 || !result.stdout) {
    throw new Error(`oracle tool \`${tool}\` not found: install the \`${pkg}\` package (bash .ci/run does)`);
  }
  return result.stdout.trim();
}
