import { ftruncateSync } from 'node:fs';
import { DiskwrightError, throwIfAborted } from '../../errors.js';
import { withAtomicPath } from '../../io/atomic.js';
import { isAllZero } from '../../io/zero.js';
import type { Progress } from '../../io/progress.js';
import { recordFormat } from '../format-record.js';
import { openImage } from '../open.js';
import type { Disk, DiskFormat } from '../types.js';
import { openChunkSource, type Chunk } from './chunk-source.js';
import { DEFAULT_CLUSTER_SIZE } from './create.js';
import { DeflatePool, type CompressedChunk } from './deflate-pool.js';
import { OutputFile } from './output-file.js';
import { Qcow2StreamWriter } from './stream-writer.js';

/** Options of {@link convertImage} (qemu-img convert's, by their long names). */
export interface ConvertOptions {
  /** Input format (default: the probing rule of openImage). */
  readonly inputFormat?: DiskFormat;
  readonly outputFormat: DiskFormat;
  /** qcow2 output: deflate-compress every cluster that shrinks (`-c`). */
  readonly compress?: boolean;
  readonly clusterSize?: number;
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: Progress) => void;
}

export interface ConvertSummary {
  readonly format: DiskFormat;
  /** Virtual size. */
  readonly bytes: number;
  /** Bytes of non-zero data written (before compression). */
  readonly dataBytes: number;
  readonly seconds: number;
}

/**
 * Bytes read per step, a multiple of every cluster size. 2 MiB reads, 8 in flight, as the copy
 * engine (src/io/copy.ts) and qemu-img convert use them: on the seed, cold, O_DIRECT reads of its
 * 771 MiB of data took 0.44–0.47 s this way against 0.49–0.54 s as 4 MiB × 6.
 */
const CHUNK = 2 * 1024 * 1024;
/** Zero detection granularity for raw output (qemu-img's default -S 4k). */
const RAW_BLOCK = 4096;
/** Chunk buffers: reads in flight ahead of the consumer plus chunks whose writes are pending. */
const LANES = 8;

/** The ranges of `disk` that may hold non-zero bytes, looking through backing layers. */
export function dataRanges(disk: Disk, position: number, length: number): { start: number; length: number }[] {
  const out: { start: number; length: number }[] = [];
  const push = (start: number, len: number): void => {
    const last = out[out.length - 1];
    if (last && last.start + last.length === start) last.length += len;
    else if (len > 0) out.push({ start, length: len });
  };
  for (const e of disk.allocation(position, length)) {
    // A view (a partition window) reports 'backing' without exposing the backing Disk: read it.
    if (e.state === 'data' || (e.state === 'backing' && !disk.backing)) push(e.position, e.length);
    else if (e.state === 'backing' && disk.backing) {
      const end = Math.min(e.position + e.length, disk.backing.size);
      if (end > e.position) for (const r of dataRanges(disk.backing, e.position, end - e.position)) push(r.start, r.length);
    }
  }
  return out;
}

/**
 * Copies the guest-visible content of `input` into a new image `output` (raw or qcow2), like
 * `qemu-img convert`: unallocated and all-zero ranges are skipped (holes in raw, unallocated
 * clusters in qcow2), the backing chain is flattened, and the output appears atomically.
 */
export async function convertImage(input: string, output: string, options: ConvertOptions): Promise<ConvertSummary> {
  if (options.compress && options.outputFormat !== 'qcow2') {
    throw new DiskwrightError('E_INVALID_ARGUMENT', 'compression (-c) needs qcow2 output', { hint: 'add -O qcow2' });
  }
  const source = openImage(input, { format: options.inputFormat, readOnly: true });
  try {
    return await convertDisk(source, output, options);
  } finally {
    source.close();
  }
}

/**
 * {@link convertImage} from an open Disk (a whole image, or a partition window of one — how
 * `extract` copies a partition out of a qcow2).
 *
 * One pass, front to back: chunks are read several at once (O_DIRECT for raw files, the host data
 * runs of a qcow2), all-zero blocks are dropped, and what remains is written asynchronously while
 * the next chunks are read. qcow2 output is streamed (Qcow2StreamWriter: metadata once, at the
 * end); `-c` deflates chunks in a worker pool and stores them in guest order.
 */
export async function convertDisk(source: Disk, output: string, options: Omit<ConvertOptions, 'inputFormat'>): Promise<ConvertSummary> {
  const started = performance.now();
  // A qcow2 holds whole sectors: a raw input's last partial sector is padded with zeros, as
  // qemu-img does (its raw driver rounds the length up).
  const size = options.outputFormat === 'qcow2' ? Math.ceil(source.size / 512) * 512 : source.size;
  let dataBytes = 0;
  await withAtomicPath(
    output,
    async (temp) => {
      const block = options.outputFormat === 'qcow2' ? (options.clusterSize ?? DEFAULT_CLUSTER_SIZE) : RAW_BLOCK;
      const sink: Sink = options.outputFormat === 'qcow2' ? qcow2Sink(Qcow2StreamWriter.create(temp, { size, clusterSize: block })) : rawSink(temp, size);
      const chunks = planChunks(source, source.size, block);
      const reader = openChunkSource(source, CHUNK, LANES);
      const pool = options.compress ? new DeflatePool() : undefined;
      const inFlight = new Set<Promise<unknown>>();
      const keep = <T>(p: Promise<T>): Promise<T> => {
        inFlight.add(p);
        void p.then(() => inFlight.delete(p), () => inFlight.delete(p));
        return p;
      };
      try {
        const consume = pool
          ? compressingConsumer(pool, sink, block, keep, (n) => (dataBytes += n))
          : plainConsumer(sink, block, (n) => (dataBytes += n));
        // Lane i % LANES is read again only once chunk i's writes are done with it.
        const laneFree: (Promise<unknown> | undefined)[] = new Array(reader.lanes);
        const reads: Promise<Uint8Array>[] = [];
        const schedule = (i: number): void => {
          if (i >= chunks.length) return;
          const lane = i % reader.lanes;
          reads[i] = keep((laneFree[lane] ?? Promise.resolve()).then(() => reader.read(chunks[i]!, lane)));
        };
        for (let i = 0; i < reader.lanes - 1; i++) schedule(i);
        for (let i = 0; i < chunks.length; i++) {
          throwIfAborted(options.signal);
          schedule(i + reader.lanes - 1);
          const data = await reads[i]!;
          delete reads[i];
          laneFree[i % reader.lanes] = keep(consume.chunk(chunks[i]!, data));
          const chunk = chunks[i]!;
          options.onProgress?.({ bytes: Math.min(size, chunk.at + chunk.length), total: size });
        }
        await consume.finish();
        await Promise.all(laneFree);
        await sink.finish();
        options.onProgress?.({ bytes: size, total: size });
      } finally {
        // Nothing may still read into a lane or write from one when the files close.
        await Promise.allSettled([...inFlight]);
        await pool?.close();
        reader.close();
        await sink.close();
      }
      recordFormat(temp, options.outputFormat);
    },
    { overwrite: options.overwrite, signal: options.signal },
  );
  return { format: options.outputFormat, bytes: size, dataBytes, seconds: (performance.now() - started) / 1000 };
}

/** Spans of whole blocks that may hold data, cut into chunks of at most CHUNK bytes. */
function planChunks(source: Disk, size: number, block: number): Chunk[] {
  const chunks: Chunk[] = [];
  let previousEnd = 0;
  for (const r of dataRanges(source, 0, size)) {
    // Whole blocks: qcow2 clusters are then written whole.
    const start = Math.max(previousEnd, Math.floor(r.start / block) * block);
    const end = Math.min(size, Math.ceil((r.start + r.length) / block) * block);
    for (let at = start; at < end; at += CHUNK) chunks.push({ at, length: Math.min(CHUNK, end - at) });
    previousEnd = Math.max(previousEnd, end);
  }
  return chunks;
}

/** Where converted data goes: runs of whole blocks in ascending order. */
interface Sink {
  /** Stores `bytes` at guest `at`; resolves when `bytes` may be reused. */
  write(bytes: Uint8Array, at: number): Promise<void>;
  /** qcow2 only: one compressed cluster. */
  writeCompressed?(cluster: number, compressed: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  close(): Promise<void>;
}

function qcow2Sink(writer: Qcow2StreamWriter): Sink {
  return {
    write: (bytes, at) => writer.writeClusters(at / writer.clusterSize, bytes),
    writeCompressed: (cluster, compressed) => writer.writeCompressed(cluster, compressed),
    finish: () => writer.finish(),
    close: () => writer.close(),
  };
}

/** A sparse raw file of `size` bytes: only non-zero runs are written. */
function rawSink(path: string, size: number): Sink {
  const file = OutputFile.create(path);
  try {
    ftruncateSync(file.descriptor, size);
  } catch (error) {
    void file.close();
    throw new DiskwrightError('E_IO', `${path}: cannot extend to ${size} bytes: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { path, cause: error });
  }
  return {
    write: (bytes, at) => file.write(bytes, at),
    finish: () => file.settle(),
    close: () => file.close(),
  };
}

/** Like Promise.all, but settles only when every promise has: no write outlives its buffer or file. */
async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

interface Consumer {
  /** Takes one chunk (in order); resolves when the chunk's buffer may be reused. */
  chunk(chunk: Chunk, data: Uint8Array): Promise<unknown>;
  /** Stores whatever is still queued. */
  finish(): Promise<void>;
}

/** Writes the non-zero blocks of each chunk, one write per contiguous run. */
function plainConsumer(sink: Sink, block: number, counted: (bytes: number) => void): Consumer {
  return {
    chunk(chunk, data) {
      const writes: Promise<void>[] = [];
      let runStart = -1;
      // Up to one step past the last block, which may be short (the disk's end), to close the run.
      const blocks = Math.ceil(data.length / block);
      for (let b = 0; b <= blocks; b++) {
        const off = Math.min(b * block, data.length);
        const nonZero = b < blocks && !isAllZero(data, off, Math.min(data.length, off + block));
        if (nonZero && runStart < 0) runStart = off;
        if (!nonZero && runStart >= 0) {
          const end = Math.min(off, data.length);
          writes.push(sink.write(data.subarray(runStart, end), chunk.at + runStart));
          counted(end - runStart);
          runStart = -1;
        }
      }
      return settleAll(writes);
    },
    finish: () => Promise.resolve(),
  };
}

/**
 * `-c`: each chunk is copied into a transferable buffer and deflated by the pool; results are
 * stored strictly in submission order, so the image layout does not depend on which worker
 * finishes first. At most twice the pool size of chunks wait in memory.
 */
function compressingConsumer(pool: DeflatePool, sink: Sink, clusterSize: number, keep: <T>(p: Promise<T>) => Promise<T>, counted: (bytes: number) => void): Consumer {
  const queue: { chunk: Chunk; result: Promise<CompressedChunk> }[] = [];
  const spare: ArrayBuffer[] = [];
  const limit = pool.size * 2;
  const store = async (): Promise<void> => {
    const { chunk, result } = queue.shift()!;
    const { buffer, lengths, packed } = await result;
    const data = new Uint8Array(buffer, 0, chunk.length);
    const writes: Promise<void>[] = [];
    let packedAt = 0;
    let runStart = -1;
    for (let i = 0; i <= lengths.length; i++) {
      const kind = i < lengths.length ? lengths[i]! : -1;
      // Clusters deflate did not shrink are stored as they are, contiguous ones in one write.
      if (kind === 0 && runStart < 0) runStart = i;
      if (kind !== 0 && runStart >= 0) {
        const bytes = data.subarray(runStart * clusterSize, Math.min(chunk.length, i * clusterSize));
        writes.push(sink.write(bytes, chunk.at + runStart * clusterSize));
        counted(bytes.length);
        runStart = -1;
      }
      if (kind > 0) {
        writes.push(sink.writeCompressed!((chunk.at + i * clusterSize) / clusterSize, packed.subarray(packedAt, packedAt + kind)));
        packedAt += kind;
        counted(Math.min(clusterSize, chunk.length - i * clusterSize));
      }
    }
    await settleAll(writes);
    spare.push(buffer);
  };
  // Stores run one after another in submission order; chunk n waits for the store of chunk n - limit.
  const stores: Promise<void>[] = [];
  let tail: Promise<void> = Promise.resolve();
  return {
    chunk(chunk, data) {
      const buffer = spare.pop() ?? new ArrayBuffer(CHUNK);
      new Uint8Array(buffer, 0, data.length).set(data);
      queue.push({ chunk, result: keep(pool.compress(buffer, data.length, clusterSize)) });
      tail = keep(tail.then(store));
      stores.push(tail);
      // The source lane is free once its bytes are copied, unless too many chunks wait.
      return stores[stores.length - 1 - limit] ?? Promise.resolve();
    },
    finish: () => tail,
  };
}
