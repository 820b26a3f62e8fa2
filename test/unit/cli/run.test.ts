import { describe, expect, it } from 'vitest';
import { runBin, runInProcess } from '../../helpers/cli.js';

describe('diskwright CLI frame', () => {
  it('lists commands with --help and exits 0', async () => {
    const result = await runInProcess(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Usage: diskwright COMMAND/);
  });

  it('rejects an unknown command with one line, no stack, exit 2', async () => {
    const result = await runBin(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^diskwright: unknown command `frobnicate` \[E_USAGE\]/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
