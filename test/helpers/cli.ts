import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { runCli } from '../../src/cli/run.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process (fast; no build needed) with captured output. */
export async function runInProcess(args: readonly string[], options: { signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await runCli(args, {
    stdout,
    stderr,
    json: false,
    debug: false,
    isTTY: false,
    signal: options.signal ?? new AbortController().signal,
    env: options.env ?? process.env,
  });
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** Path of the built CLI (test/globalSetup builds dist/ once per run). */
export const binPath = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Runs the built `diskwright` binary as a child process, never rejecting. */
export async function runBin(args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [binPath, ...args], {
    reject: false,
    env: options.env,
    extendEnv: options.env === undefined,
    input: options.input,
    timeout: options.timeout ?? 120_000,
  });
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}
