import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

// An output is durable only when the rename that gives it its name is: the directory holding it
// must be fsynced after the rename (ext4/xfs journal the rename at their next commit, so a power
// loss right after "done" could leave the old name). Observed with strace on the real binary.

let dir: string;
beforeAll(async () => {
  await requireTool('strace', 'strace');
  dir = await tempDir('dir-fsync-');
});

interface Call {
  readonly name: string;
  readonly args: string;
  readonly result: string;
}

/** The syscalls of `diskwright ARGS` that open, fsync and rename (strace -f, one line each). */
async function traced(args: readonly string[]): Promise<Call[]> {
  const log = join(dir, `trace-${Math.random().toString(36).slice(2)}.log`);
  const run = await execa('strace', ['-f', '-qq', '-e', 'trace=openat,fsync,fdatasync,rename,renameat,renameat2', '-o', log, process.execPath, binPath, ...args], { reject: false });
  expect(run.stderr).toBe('');
  expect(run.exitCode).toBe(0);
  return readFileSync(log, 'utf8')
    .split('\n')
    .map((line) => /^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1]!, args: m[2]!, result: m[3]! }));
}

/** True when, after the rename that creates `target`, its directory is opened and that fd fsynced. */
function directorySyncedAfterRename(calls: readonly Call[], target: string): boolean {
  // rename("TEMP", "TARGET") or renameat2(AT_FDCWD, "TEMP", AT_FDCWD, "TARGET", 0): the quoted full path is the target's.
  const renamed = calls.findIndex((c) => c.name.startsWith('rename') && c.result === '0' && c.args.includes(`"${target}"`));
  if (renamed < 0) throw new Error(`no rename to ${target}`);
  const fds = new Set<string>();
  for (const c of calls.slice(renamed + 1)) {
    if (c.name === 'openat' && c.args.includes(`"${dir}"`) && c.args.includes('O_RDONLY')) fds.add(c.result);
    if (c.name === 'fsync' && fds.has(c.args.trim())) return true;
  }
  return false;
}

describe('every atomic output fsyncs its directory after the rename', () => {
  it.each([
    ['create', (out: string) => ['create', out, '--size', '1M']],
    ['create --format qcow2', (out: string) => ['create', out, '--size', '1M', '--format', 'qcow2']],
  ])('%s', async (_name, args) => {
    const out = join(dir, `out-${Math.random().toString(36).slice(2)}.img`);
    const calls = await traced(args(out));
    expect(directorySyncedAfterRename(calls, out)).toBe(true);
  });
});
