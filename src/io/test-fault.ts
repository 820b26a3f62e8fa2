import { appendFileSync } from 'node:fs';

/**
 * Deterministic crash and disk-full points for tests of whole commands (test/helpers/crash.ts).
 * `DISKWRIGHT_TEST_FAULT=N:kill` SIGKILLs the process at the N-th fault point it reaches,
 * `N:enospc` throws ENOSPC there; `DISKWRIGHT_TEST_FAULT_LOG=FILE` appends `N PHASE` per point.
 * Points are the steps of every commit (src/disk/commit.ts) and of every atomic output
 * (src/io/atomic.ts: before the fsync, before and after the rename), counted across the process.
 * Unset in normal use: then a point costs one environment lookup.
 */

let pointsSeen = 0;

/** Whether any fault or log is configured (callers skip building step details otherwise). */
export function testFaultsActive(): boolean {
  return process.env.DISKWRIGHT_TEST_FAULT !== undefined || process.env.DISKWRIGHT_TEST_FAULT_LOG !== undefined;
}

/** One fault point named `phase` (one word: it is a column of the log). */
export function testFaultPoint(phase: string): void {
  const spec = process.env.DISKWRIGHT_TEST_FAULT;
  const log = process.env.DISKWRIGHT_TEST_FAULT_LOG;
  if (spec === undefined && log === undefined) return;
  const match = spec ? /^(\d+):(kill|enospc)$/.exec(spec) : null;
  pointsSeen += 1;
  if (log) appendFileSync(log, `${pointsSeen} ${phase}\n`);
  if (!match || pointsSeen !== Number(match[1])) return;
  if (match[2] === 'kill') process.kill(process.pid, 'SIGKILL');
  const error = new Error(`ENOSPC: no space left on device (injected at fault point ${pointsSeen}, ${phase})`) as NodeJS.ErrnoException;
  error.code = 'ENOSPC';
  throw error;
}
