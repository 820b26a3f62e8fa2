import { toolStep } from './progress.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAbsolute, join } from 'node:path';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { runOnThisThread } from './in-thread.js';
import { E2fsWorkerPool, type HookFactory } from './pool.js';

/** The e2fsprogs tools diskwright ships as WebAssembly (wasm/dist/). */
export const E2FS_TOOLS = ['e2fsck', 'resize2fs', 'mke2fs', 'tune2fs', 'dumpe2fs', 'debugfs', 'e2undo'] as const;
export type E2fsTool = (typeof E2FS_TOOLS)[number];

export interface RunE2fsToolOptions {
  /** Environment seen by the tool (getenv). Merged over the defaults from {@link defaultE2fsEnv}. */
  readonly env?: Readonly<Record<string, string>>;
  /** Bytes (or text) the tool reads on stdin; empty by default. Tools never see a terminal. */
  readonly stdin?: string | Uint8Array;
  readonly signal?: AbortSignal;
  /**
   * Keep files sparse (default true): a write of zeros over a range of a regular file that already
   * reads as zeros is skipped — the result is byte-identical, but WASM cannot punch holes (trap 13).
   */
  readonly sparse?: boolean;
  /** Receives output chunks while the tool runs (progress parsing). */
  readonly onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
  /** argv[0] as the tool sees and prints it (default: the bare tool name, e.g. `e2fsck`). */
  readonly argv0?: string;
  /**
   * Paths served by Disk objects instead of host files: an ES module exporting
   * `createDisks(args)` → `{absolute path → Disk}`, run inside the worker (docs/e2fs.md, "Hooks").
   */
  readonly diskFactory?: HookFactory;
  /** Virtual directory trees for `mke2fs -d`: an ES module exporting `createTrees(args)` → `{absolute root → Tree}`. */
  readonly treeFactory?: HookFactory;
  /**
   * Run on the calling thread, not in a worker (in-thread.ts): for short runs of bounded work
   * only (a header read), since the run blocks the event loop and `signal` is checked only before.
   */
  readonly inThread?: boolean;
  /**
   * Initial WebAssembly heap in bytes (≥ 16 MiB; default 128 MiB). Growing the heap copies it, so
   * big runs start large; a short run on a small heap saves setting up and freeing a big one.
   */
  readonly initialMemory?: number;
}

export interface E2fsToolResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** What the disk factory's `afterRun(disks, result)` returned, if it exports one. */
  readonly diskResult?: unknown;
}

/** Environment variables of e2fsprogs that callers' process.env may set for the tools too. */
const FORWARDED_ENV = ['E2FSPROGS_FAKE_TIME', 'E2FSCK_TIME', 'E2FSCK_CONFIG', 'MKE2FS_CONFIG', 'TZ'] as const;

/** Directory holding the built tools: <package root>/wasm/dist from both src/e2fs and dist/e2fs. */
export function wasmDistDir(): string {
  return fileURLToPath(new URL('../../wasm/dist/', import.meta.url));
}

/**
 * Defaults that make runs independent of the host's /etc (trap 11: getenv inside WASM never sees
 * process.env): the mke2fs.conf shipped with the source, an empty e2fsck.conf.
 */
export function defaultE2fsEnv(processEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const dir = wasmDistDir();
  const env: Record<string, string> = {
    MKE2FS_CONFIG: join(dir, 'mke2fs.conf'),
    E2FSCK_CONFIG: join(dir, 'e2fsck.conf'),
  };
  for (const name of FORWARDED_ENV) {
    const value = processEnv[name];
    if (value !== undefined && value !== '') env[name] = value;
  }
  return env;
}

let pool: E2fsWorkerPool | undefined;

/** The shared worker pool (created on first use). */
export function e2fsPool(): E2fsWorkerPool {
  pool ??= new E2fsWorkerPool();
  return pool;
}

/** Terminates the shared pool's workers (tests and long-lived hosts that want a clean exit). */
export async function closeE2fsPool(): Promise<void> {
  const current = pool;
  pool = undefined;
  await current?.close();
}

/**
 * Runs an e2fsprogs tool (built to WebAssembly, no host e2fsprogs needed) in a worker thread.
 * `argv` excludes the program name. Resolves with the tool's own exit code and output; rejects
 * with E_WASM if the tool crashed and E_ABORTED when `signal` fired (the worker is killed and the
 * files it held open are closed).
 */
export async function runE2fsTool(tool: E2fsTool, argv: readonly string[], options: RunE2fsToolOptions = {}): Promise<E2fsToolResult> {
  if (!(E2FS_TOOLS as readonly string[]).includes(tool)) {
    throw new InvalidArgumentError(`Expected \`tool\` to be one of ${E2FS_TOOLS.join(', ')}, got \`${String(tool)}\``);
  }
  for (const arg of argv) {
    if (typeof arg !== 'string' || arg.includes('\0')) {
      throw new InvalidArgumentError(`Expected every argument of ${toolStep(tool)} to be a string without NUL bytes, got \`${String(arg)}\``);
    }
  }
  const wasmDir = wasmDistDir();
  if (!existsSync(join(wasmDir, `${tool}.wasm`))) {
    throw new DiskwrightError('E_WASM', `diskwright's WebAssembly tools are incomplete: ${tool}.wasm is missing from ${wasmDir}`, {
      path: wasmDir,
      hint: 'reinstall diskwright, or rebuild the tools with `npm run build:wasm`',
    });
  }
  if (options.argv0 !== undefined && (typeof options.argv0 !== 'string' || options.argv0 === '' || options.argv0.includes('\0'))) {
    throw new InvalidArgumentError(`Expected \`argv0\` to be a non-empty string without NUL bytes, got \`${String(options.argv0)}\``);
  }
  for (const [name, factory] of [['diskFactory', options.diskFactory], ['treeFactory', options.treeFactory]] as const) {
    if (factory !== undefined) checkHookFactory(name, factory);
  }
  const stdin = typeof options.stdin === 'string' ? new TextEncoder().encode(options.stdin) : options.stdin;
  const onOutput = options.onOutput;
  const decoder = { 1: new TextDecoder(), 2: new TextDecoder() };
  const job = {
    wasmDir,
    tool,
    argv,
    env: { ...defaultE2fsEnv(), ...options.env },
    sparse: options.sparse !== false,
    cwd: process.cwd(),
    ...(stdin ? { stdin } : {}),
    ...(options.argv0 !== undefined ? { argv0: options.argv0 } : {}),
    ...(options.diskFactory ? { diskFactory: options.diskFactory } : {}),
    ...(options.treeFactory ? { treeFactory: options.treeFactory } : {}),
    ...(options.initialMemory !== undefined ? { initialMemory: options.initialMemory } : {}),
  };
  const runOptions = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(onOutput ? { onOutput: (fd: 1 | 2, bytes: Uint8Array) => onOutput(fd === 1 ? 'stdout' : 'stderr', decoder[fd].decode(bytes, { stream: true })) } : {}),
  };
  const result = options.inThread === true ? await runOnThisThread(job, runOptions) : await e2fsPool().run(job, runOptions);
  return {
    exitCode: result.exitCode,
    stdout: result.stdout.toString('utf8'),
    stderr: result.stderr.toString('utf8'),
    ...(result.diskResult !== undefined ? { diskResult: result.diskResult } : {}),
  };
}

/** A hook factory's module must be an absolute path or a file: URL (the worker imports it). */
function checkHookFactory(name: string, factory: HookFactory): void {
  const module = factory?.module;
  if (typeof module !== 'string' || !(module.startsWith('file:') || isAbsolute(module))) {
    throw new InvalidArgumentError(`Expected \`${name}.module\` to be an absolute path or a file: URL, got \`${String(module)}\``);
  }
}

/**
 * The device argument for a filesystem at a byte offset inside an image: e2fsprogs' unix io
 * manager accepts `IMAGE?offset=N`.
 */
export function imageSpec(image: string, offset: number | bigint | undefined): string {
  if (image.includes('?')) {
    throw new InvalidArgumentError(`Expected an image path without \`?\` (it selects e2fsprogs io options), got \`${image}\``, {
      path: image,
      hint: 'rename the image file',
    });
  }
  if (image.startsWith('-')) {
    throw new InvalidArgumentError(`Expected an image path not starting with \`-\`, got \`${image}\``, { path: image, hint: `use ./${image}` });
  }
  if (offset === undefined || offset === 0 || offset === 0n) return image;
  const value = BigInt(offset);
  if (value < 0n) throw new InvalidArgumentError(`Expected \`offset\` to be a non-negative byte offset, got \`${offset}\``);
  return `${image}?offset=${value}`;
}
