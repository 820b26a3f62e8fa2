import { toolStep } from './progress.js';
import { AbortedError } from '../errors.js';
import * as diskFactory from './disk-factory.js';
import { MAX_TRACKED_FDS, settleRun, type DoneMessage, type WorkerJob, type WorkerResult } from './pool.js';

/** worker.mjs, imported on this thread: the same loading, run and clean-up code as in a worker. */
interface Runner {
  runJob(job: WorkerJob & { id: number; stream: boolean; fdSlots: SharedArrayBuffer; cwd: string }): Promise<DoneMessage>;
  provideFactory(url: string, module: unknown): void;
}

const workerUrl = new URL('./worker.mjs', import.meta.url);
/** The disk factory runs name (in-place.ts's diskFactoryModule(): always the dist copy). */
const diskFactoryUrl = new URL('../../dist/e2fs/disk-factory.js', import.meta.url).href;
let runner: Promise<Runner> | undefined;

async function loadRunner(): Promise<Runner> {
  const loaded = (await import(workerUrl.href)) as Runner;
  // This thread already has the disk factory (bundled with the CLI): no second, unbundled copy.
  loaded.provideFactory(diskFactoryUrl, diskFactory);
  return loaded;
}

/**
 * Runs one tool on the calling thread instead of in a worker. Starting a worker thread costs
 * more (a new isolate and Node bootstrap, 30–90 ms) than a header read takes, which made
 * `diskwright info` 2.5–3× `node -e 0` (issue 14). The run blocks the event loop for its duration
 * and `signal` is only checked before it starts, so this is for short runs of bounded work only
 * (dumpe2fs -h reads a superblock and the journal's: `diskwright info` of a 1 TiB ext4 takes
 * 0.45 s in all, under load); a Ctrl-C during it is answered when it returns. Anything that scales
 * with the filesystem goes to the pool, where Ctrl-C terminates the worker.
 */
export async function runOnThisThread(job: WorkerJob, options: { signal?: AbortSignal; onOutput?: (fd: 1 | 2, bytes: Uint8Array) => void } = {}): Promise<WorkerResult> {
  if (options.signal?.aborted) throw new AbortedError(`${toolStep(job.tool)} interrupted`, { cause: options.signal.reason });
  runner ??= loadRunner();
  const { runJob } = await runner;
  const message = await runJob({ ...job, id: 0, stream: false, fdSlots: new SharedArrayBuffer(MAX_TRACKED_FDS * 4), cwd: job.cwd ?? process.cwd() });
  const result = settleRun(job.tool, message);
  if (result.stdout.length > 0) options.onOutput?.(1, result.stdout);
  if (result.stderr.length > 0) options.onOutput?.(2, result.stderr);
  return result;
}
