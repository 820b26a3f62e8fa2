import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, stat } from 'node:fs/promises';
import { execa } from 'execa';
import { withImage } from '../../src/disk/index.js';
import { binPath } from './cli.js';

/**
 * kill -9 harness: run the built CLI, SIGKILL it at a chosen moment, then let the next writer
 * roll back whatever the kill interrupted, and compare the target with its old and new states.
 */

/** Host tools live in /usr/sbin on Debian. */
export const KILL_ENV = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

export interface KilledRun {
  /** True when the process was still running and got the signal. */
  readonly killed: boolean;
  readonly code: number | null;
  readonly stderr: string;
  /** Milliseconds from the signal to the process's exit (undefined when it was not signalled). */
  readonly exitAfterMs?: number;
}

/**
 * Runs `diskwright ...args`; sends `signal` (default SIGKILL) `delayMs` after the start if it has
 * not exited.
 */
export function runAndKill(args: readonly string[], delayMs: number, env: NodeJS.ProcessEnv = KILL_ENV, signal: NodeJS.Signals = 'SIGKILL'): Promise<KilledRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killed = false;
    let signalledAt = 0;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) {
        killed = true;
        signalledAt = performance.now();
        child.kill(signal);
      }
    }, delayMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ killed, code, stderr, ...(killed ? { exitAfterMs: performance.now() - signalledAt } : {}) });
    });
  });
}

/** Runs the CLI to completion; returns its wall time in ms (the span kills are spread over). */
export async function timedRun(args: readonly string[], env: NodeJS.ProcessEnv = KILL_ENV): Promise<{ ms: number; code: number | null; stderr: string }> {
  const started = performance.now();
  const run = await runAndKill(args, 10 * 60_000, env);
  return { ms: performance.now() - started, code: run.code, stderr: run.stderr };
}

/**
 * `trials` kill moments spread over the run, weighted to its second half (where the commit is);
 * a small deterministic jitter keeps consecutive runs from hitting the same instant.
 */
export function killDelays(trials: number, spanMs: number, seed = 1): number[] {
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: trials }, (_, i) => {
    const fraction = 0.25 + (0.85 * (i + random())) / trials;
    return Math.round(spanMs * fraction);
  });
}

export async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The state of a file: absent, or its size and hash. */
export async function fileState(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return 'absent';
  return `${info.size}:${await sha256(path)}`;
}

/** What the next diskwright writer does first: take the lock and roll back an interrupted commit. */
export async function nextWriterRecovers(image: string): Promise<boolean> {
  return withImage(image, { access: 'write' }, async ({ rolledBack }) => rolledBack);
}

/** Host `e2fsck -fn` of the filesystem at `offset` bytes into `image`: its exit code and output. */
export async function hostFsck(image: string, offset = 0): Promise<{ exitCode: number; output: string }> {
  const device = offset === 0 ? image : `${image}?offset=${offset}`;
  const r = await execa('e2fsck', ['-fn', device], { env: KILL_ENV, reject: false });
  return { exitCode: r.exitCode ?? -1, output: `${r.stdout}\n${r.stderr}` };
}

export { copyFile };
