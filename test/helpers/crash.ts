import { execa } from 'execa';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { expect } from 'vitest';
import { binPath, type CliResult } from './cli.js';

/**
 * Crash and disk-full harness for whole commands (reused by the resize/fsck/template/instance
 * kill tests). A command runs as a child process with `DISKWRIGHT_TEST_FAULT=N:kill` (SIGKILL at
 * its N-th commit step, src/disk/commit.ts) or `N:enospc`; afterwards the image must be the old
 * or the new one, and the next command of any kind must see it consistently.
 */

/** Runs the built CLI with extra environment, never rejecting. */
export async function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult & { killed: boolean }> {
  const result = await execa(process.execPath, [binPath, ...args], { reject: false, env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr, killed: result.signal === 'SIGKILL' };
}

/** The commit steps (`N PHASE`) a clean run of `args` goes through. */
export async function commitSteps(args: readonly string[], log: string): Promise<{ n: number; phase: string }[]> {
  rmSync(log, { force: true });
  const result = await runCli(args, { DISKWRIGHT_TEST_FAULT_LOG: log });
  expect(result.code, result.stderr).toBe(0);
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [n, phase] = line.split(' ');
      return { n: Number(n), phase: phase! };
    });
}

/**
 * A spread of steps to fault: the first and last of each phase and up to `perPhase` more evenly
 * between (every step of a small commit).
 */
export function sampleSteps(steps: readonly { n: number; phase: string }[], perPhase = 2): number[] {
  const picked = new Set<number>();
  const phases = new Map<string, number[]>();
  for (const s of steps) phases.set(s.phase, [...(phases.get(s.phase) ?? []), s.n]);
  for (const list of phases.values()) {
    picked.add(list[0]!);
    picked.add(list[list.length - 1]!);
    for (let k = 1; k <= perPhase; k += 1) picked.add(list[Math.floor((k * list.length) / (perPhase + 1))]!);
  }
  return [...picked].sort((a, b) => a - b);
}

/** Temp files and records a run left beside `image`. */
export function leftovers(image: string): string[] {
  const prefix = `.${basename(image)}.diskwright-`;
  return readdirSync(dirname(image)).filter((n) => (n.startsWith(prefix) && n.endsWith('.tmp')) || n === `${basename(image)}.diskwright-undo`);
}

/** One command under test. */
export interface CrashCase {
  /** The pristine image every trial starts from (copied). */
  readonly pristine: string;
  /** The CLI arguments for the trial's copy of the image. */
  args(image: string): string[];
  /** What the command changes, as one comparable string (e.g. the target file's hash or "absent"). */
  probe(image: string): Promise<string>;
  /** Host check of the filesystem (e2fsck -fn), exit code. */
  fsck(image: string): Promise<number>;
  /** A read-only command to run first after the crash (default: `fs ls IMAGE /`). */
  reader?(image: string): string[];
}

/** Kills the command at `step` and checks the image: old or new, consistent for the next command. */
export async function killAtStep(c: CrashCase, work: string, step: number, expected: { old: string; new: string }): Promise<'old' | 'new'> {
  copyFileSync(c.pristine, work);
  const run = await runCli(c.args(work), { DISKWRIGHT_TEST_FAULT: `${step}:kill` });
  expect(run.killed, `step ${step}: ${run.stderr}`).toBe(true);
  // The next command of any kind: a reader either works (nothing pending) or refuses in one line.
  const reader = await runCli(c.reader ? c.reader(work) : ['fs', 'ls', work, '/']);
  if (reader.code !== 0) {
    expect(reader.stderr).toMatch(/interrupted diskwright write.*\[E_NEEDS_RECOVERY\]\n {2}hint: run `diskwright recover /);
    expect(reader.stderr.trim().split('\n')).toHaveLength(2);
  }
  const recover = await runCli(['recover', work]);
  expect(recover.code, recover.stderr).toBe(0);
  expect(leftovers(work)).toEqual([]);
  expect(await c.fsck(work), `host e2fsck after a kill at commit step ${step}`).toBe(0);
  const state = await c.probe(work);
  expect([expected.old, expected.new], `state after a kill at commit step ${step}`).toContain(state);
  return state === expected.new ? 'new' : 'old';
}

/** Fails the command's `step` with ENOSPC: exit 1 with one line, the image old and clean, no record. */
export async function enospcAtStep(c: CrashCase, work: string, step: number, expected: { old: string; new: string }): Promise<void> {
  copyFileSync(c.pristine, work);
  const run = await runCli(c.args(work), { DISKWRIGHT_TEST_FAULT: `${step}:enospc` });
  expect(run.code, run.stderr).toBe(1);
  expect(run.stderr).toMatch(/ENOSPC/);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(leftovers(work)).toEqual([]);
  expect(await c.fsck(work)).toBe(0);
  expect(await c.probe(work)).toBe(expected.old);
  const again = await runCli(c.args(work));
  expect(again.code, again.stderr).toBe(0);
  expect(await c.probe(work)).toBe(expected.new);
}
