import { toolStep } from './progress.js';
import { Worker } from 'node:worker_threads';
import { closeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { AbortedError, DiskwrightError, type ErrorCode } from '../errors.js';

/** Host fds one run may hold at once that the pool can close after killing a worker. */
export const MAX_TRACKED_FDS = 64;

/** What the worker needs for one tool run. */
export interface WorkerJob {
  readonly wasmDir: string;
  readonly tool: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly stdin?: Uint8Array;
  /** Skip writes of zeros over ranges that already read as zeros (keeps images sparse). */
  readonly sparse?: boolean;
  /** Directory relative paths are resolved against (default: the process's cwd at dispatch). */
  readonly cwd?: string;
  /** The program name the tool sees as argv[0] (and prints in messages); default: the tool's name. */
  readonly argv0?: string;
  /** Builds `{absolute path → Disk}` inside the worker (see {@link HookFactory}). */
  readonly diskFactory?: HookFactory;
  /** Builds `{absolute virtual root → Tree}` inside the worker (see {@link HookFactory}). */
  readonly treeFactory?: HookFactory;
  /** Initial WebAssembly heap of the run in bytes (default: worker.mjs's INITIAL_MEMORY). */
  readonly initialMemory?: number;
}

/**
 * An ES module the worker imports (once per worker) to build a run's hooks: it exports
 * `createDisks(args, context)` → `{path: Disk}` and/or `createTrees(args, context)` → `{root: Tree}`,
 * and optionally `afterRun(disks, {exitCode, failure})` → structured-clonable data returned as
 * `diskResult`. `context.trackFd(nfd)` / `untrackFd(nfd)` let the pool close the factory's host
 * fds if the run is killed. Objects cannot cross to a worker thread, hence a module, not a value.
 */
export interface HookFactory {
  /** Absolute path or file: URL of the module. */
  readonly module: string;
  /** Passed to the factory function; must be structured-clonable. */
  readonly args?: unknown;
}

export interface WorkerResult {
  readonly exitCode: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** What the disk factory's `afterRun` returned. */
  readonly diskResult?: unknown;
}

interface Pending {
  readonly job: WorkerJob;
  readonly onOutput: ((fd: 1 | 2, bytes: Uint8Array) => void) | undefined;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (result: WorkerResult) => void;
  readonly reject: (error: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly fdSlots: SharedArrayBuffer;
  current: (Pending & { id: number; cleanup: () => void }) | undefined;
  /** Tools this worker has run (it keeps their compiled modules). */
  readonly tools: Set<string>;
}

/** What worker.mjs's runJob answers for one run (posted as a message, or returned on this thread). */
export interface DoneMessage {
  type: 'done';
  id: number;
  exitCode?: number;
  failure?: string;
  hookError?: string;
  /** The hook's error when it was a DiskwrightError (worker.mjs hookFault). */
  hookFault?: { code: ErrorCode; message: string; hint?: string; path?: string; offset?: number | bigint };
  diskResult?: unknown;
  stdout: Uint8Array;
  stderr: Uint8Array;
}
interface OutputMessage {
  type: 'output';
  id: number;
  fd: 1 | 2;
  bytes: Uint8Array;
}

const workerUrl = new URL('./worker.mjs', import.meta.url);

/**
 * A bounded pool of worker threads running e2fsprogs tools. Each worker keeps its compiled
 * WebAssembly modules; idle workers are unref'd so they never keep the process alive.
 */
export class E2fsWorkerPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;

  constructor(size = Math.max(1, Math.min(4, availableParallelism()))) {
    this.size = size;
  }

  /** Runs one job; rejects with E_ABORTED when `signal` fires (the worker is terminated). */
  run(job: WorkerJob, options: { signal?: AbortSignal; onOutput?: (fd: 1 | 2, bytes: Uint8Array) => void } = {}): Promise<WorkerResult> {
    if (options.signal?.aborted) return Promise.reject(new AbortedError(`${toolStep(job.tool)} interrupted`, { cause: options.signal.reason }));
    return new Promise((resolve, reject) => {
      this.queue.push({ job, onOutput: options.onOutput, signal: options.signal, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates every worker (running jobs reject with E_ABORTED). */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    for (const pending of this.queue.splice(0)) pending.reject(new AbortedError('e2fs worker pool closed'));
    await Promise.all(slots.map((slot) => this.kill(slot, new AbortedError('e2fs worker pool closed'))));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      // An idle worker that has compiled this tool first: compiling a module costs more than a run.
      const tool = this.queue[0]!.job.tool;
      let slot = this.slots.find((s) => s.current === undefined && s.tools.has(tool)) ?? this.slots.find((s) => s.current === undefined);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const pending = this.queue.shift()!;
      if (pending.signal?.aborted) {
        pending.reject(new AbortedError(`${toolStep(pending.job.tool)} interrupted`, { cause: pending.signal.reason }));
        continue;
      }
      this.start(slot, pending);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(workerUrl, { execArgv: workerExecArgv() });
    const slot: Slot = { worker, fdSlots: new SharedArrayBuffer(MAX_TRACKED_FDS * 4), current: undefined, tools: new Set() };
    worker.unref();
    worker.on('message', (message: DoneMessage | OutputMessage) => this.onMessage(slot, message));
    worker.on('error', (error) => this.onCrash(slot, error));
    worker.on('exit', (code) => this.onCrash(slot, new Error(`worker exited with code ${code}`)));
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, pending: Pending): void {
    const id = this.nextId++;
    const onAbort = (): void => {
      void this.kill(slot, new AbortedError(`${toolStep(pending.job.tool)} interrupted`, { cause: pending.signal?.reason }));
    };
    pending.signal?.addEventListener('abort', onAbort, { once: true });
    slot.current = { ...pending, id, cleanup: () => pending.signal?.removeEventListener('abort', onAbort) };
    slot.tools.add(pending.job.tool);
    slot.worker.ref();
    slot.worker.postMessage({
      id,
      wasmDir: pending.job.wasmDir,
      tool: pending.job.tool,
      argv: [...pending.job.argv],
      env: { ...pending.job.env },
      stdin: pending.job.stdin,
      sparse: pending.job.sparse !== false,
      cwd: pending.job.cwd ?? process.cwd(),
      argv0: pending.job.argv0,
      diskFactory: pending.job.diskFactory,
      treeFactory: pending.job.treeFactory,
      initialMemory: pending.job.initialMemory,
      stream: pending.onOutput !== undefined,
      fdSlots: slot.fdSlots,
    });
  }

  private onMessage(slot: Slot, message: DoneMessage | OutputMessage): void {
    const current = slot.current;
    if (!current || message.id !== current.id) return;
    if (message.type === 'output') {
      current.onOutput?.(message.fd, message.bytes);
      return;
    }
    slot.current = undefined;
    slot.worker.unref();
    current.cleanup();
    try {
      current.resolve(settleRun(current.job.tool, message));
    } catch (error) {
      current.reject(error);
    }
    this.dispatch();
  }

  private onCrash(slot: Slot, error: unknown): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    closeTrackedFds(slot.fdSlots);
    const current = slot.current;
    slot.current = undefined;
    if (current) {
      current.cleanup();
      current.reject(new DiskwrightError('E_WASM', `${toolStep(current.job.tool)} failed: its WebAssembly worker crashed: ${firstLine(String(error))}`, { cause: error }));
    }
    this.dispatch();
  }

  private async kill(slot: Slot, reason: unknown): Promise<void> {
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
    const current = slot.current;
    slot.current = undefined;
    await slot.worker.terminate();
    // Trap 10: the killed run may hold the image open; its fds are process-wide.
    closeTrackedFds(slot.fdSlots);
    if (current) {
      current.cleanup();
      current.reject(reason);
    }
    this.dispatch();
  }
}

/** A run's `done` message as its result; throws E_IO (a hook failed) or E_WASM (the tool crashed). */
export function settleRun(tool: string, message: DoneMessage): WorkerResult {
  if (message.hookError !== undefined) {
    // A Disk or Tree method threw: the tool only saw EIO, so its output cannot be trusted.
    const cause = new Error(`${message.hookError}\n${Buffer.from(message.stderr).toString('utf8')}`);
    const fault = message.hookFault;
    if (fault) {
      // The Disk's own error (its code, words and hint), not a stringified copy inside an E_IO.
      const { code, message: what, ...details } = fault;
      throw new DiskwrightError(code, `${toolStep(tool)}: ${what}`, { hint: 'run with --debug for the hook’s stack', ...details, cause });
    }
    throw new DiskwrightError('E_IO', `${toolStep(tool)}: reading or writing the image or tree failed: ${firstLine(message.hookError).replace(/^\w*Error: /, '')}`, {
      hint: 'the tool saw an I/O error; run with --debug for the hook’s stack',
      cause,
    });
  }
  if (message.failure !== undefined || message.exitCode === undefined) {
    throw new DiskwrightError('E_WASM', `${toolStep(tool)} failed inside diskwright's WebAssembly tools: ${firstLine(message.failure ?? 'no exit code')}`, {
      hint: 'run with --debug for details; this is a diskwright bug, please report it with the image if possible',
      cause: new Error(`${message.failure}\n${Buffer.from(message.stderr).toString('utf8')}`),
    });
  }
  return {
    exitCode: message.exitCode,
    stdout: Buffer.from(message.stdout),
    stderr: Buffer.from(message.stderr),
    ...(message.diskResult !== undefined ? { diskResult: message.diskResult } : {}),
  };
}

function closeTrackedFds(shared: SharedArrayBuffer): void {
  const slots = new Int32Array(shared);
  for (let i = 0; i < slots.length; i++) {
    const value = Atomics.exchange(slots, i, 0);
    if (value > 0) {
      try {
        closeSync(value - 1);
      } catch {
        /* already closed */
      }
    }
  }
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '') ?? text;
}

/**
 * Node's flags for a worker: the process's own (a worker inherits them), less `--input-type`,
 * which node accepts only beside `-e`/`-p`/stdin and on which a worker's start fails ("can only be
 * used with string input"): a library user's `node --input-type=module -e '…'` crashed every tool run.
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if (arg === '--input-type') i++;
    else if (!arg.startsWith('--input-type=')) out.push(arg);
  }
  return out;
}
