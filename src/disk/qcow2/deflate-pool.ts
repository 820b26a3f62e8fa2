import type { Worker } from 'node:worker_threads';
import { DiskwrightError } from '../../errors.js';
import { lazyOs, lazyWorkerThreads } from '../../lazy-node.js';

const workerUrl = new URL('./deflate-worker.mjs', import.meta.url);

/** One chunk back from a worker: its input buffer (transferred back), per-cluster lengths, the packed output. */
export interface CompressedChunk {
  /** The input chunk, returned for reuse. */
  readonly buffer: ArrayBuffer;
  /** Per cluster: -1 all zero, 0 store uncompressed (deflate did not shrink it), n > 0 compressed bytes. */
  readonly lengths: Int32Array;
  /** The compressed clusters, back to back in cluster order. */
  readonly packed: Uint8Array;
}

interface Job {
  readonly id: number;
  readonly buffer: ArrayBuffer;
  readonly length: number;
  readonly clusterSize: number;
  readonly resolve: (chunk: CompressedChunk) => void;
  readonly reject: (error: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  current: Job | undefined;
}

interface Reply {
  readonly id: number;
  readonly buffer: ArrayBuffer;
  readonly lengths?: Int32Array;
  readonly packed?: Uint8Array;
  readonly error?: string;
}

/**
 * A small pool of worker threads that deflate whole chunks of clusters (`convert -c`). Chunks
 * move by transfer, not copy; each worker compresses its chunk's clusters in order, and callers
 * keep the output in guest order by awaiting the promises in the order they submitted them.
 * Workers start with `execArgv: []`: flags of the parent (a `--input-type` given to node, a test
 * runner's loader) must not reach them, they break a worker at startup.
 */
export class DeflatePool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size = Math.max(1, Math.min(lazyOs().availableParallelism(), 8))) {
    this.size = size;
  }

  /** Compresses the clusters of `buffer[0, length)`; `buffer` is transferred (detached here) until the promise resolves. */
  compress(buffer: ArrayBuffer, length: number, clusterSize: number): Promise<CompressedChunk> {
    if (this.closed) return Promise.reject(new DiskwrightError('E_IO', 'deflate pool used after close'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, buffer, length, clusterSize, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates every worker; jobs still queued or running reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new DiskwrightError('E_ABORTED', 'deflate pool closed'));
    await Promise.all(this.slots.splice(0).map(async (slot) => {
      slot.current?.reject(new DiskwrightError('E_ABORTED', 'deflate pool closed'));
      slot.current = undefined;
      await slot.worker.terminate();
    }));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.current === undefined);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.current = job;
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, buffer: job.buffer, length: job.length, clusterSize: job.clusterSize }, [job.buffer]);
    }
  }

  private spawn(): Slot {
    const worker = new (lazyWorkerThreads().Worker)(workerUrl, { execArgv: [] });
    const slot: Slot = { worker, current: undefined };
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const job = slot.current;
      if (!job || job.id !== reply.id) return;
      slot.current = undefined;
      worker.unref();
      if (reply.error !== undefined || !reply.lengths || !reply.packed) job.reject(new DiskwrightError('E_IO', `deflate worker failed: ${reply.error ?? 'no result'}`));
      else job.resolve({ buffer: reply.buffer, lengths: reply.lengths, packed: reply.packed });
      this.dispatch();
    });
    const crashed = (error: unknown): void => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      slot.current?.reject(new DiskwrightError('E_IO', `deflate worker stopped: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
      slot.current = undefined;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', crashed);
    worker.on('exit', (code) => crashed(new Error(`exit code ${code}`)));
    this.slots.push(slot);
    return slot;
  }
}
