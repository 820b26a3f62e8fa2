import { closeSync, ftruncateSync, openSync } from 'node:fs';
import { DiskwrightError, throwIfAborted } from '../../errors.js';
import { withAtomicPath } from '../../io/atomic.js';
import type { Progress } from '../../io/progress.js';
import { recordFormat } from '../format-record.js';
import { openImage } from '../open.js';
import { RawFileDisk } from '../raw.js';
import type { Disk, DiskFormat } from '../types.js';
import { compressCluster } from './compress.js';
import { createQcow2, DEFAULT_CLUSTER_SIZE } from './create.js';
import { Qcow2Disk } from './image.js';
import { writeFully } from './raw-file.js';
import { SourceReader, type ReadLane } from '../../io/source.js';

/** Reads of the chunks of a conversion, in order, one ahead of the caller. */
interface ChunkReader {
  next(): Promise<Uint8Array | undefined>;
  close(): void;
}

/**
 * A raw source is read with O_DIRECT (holes come back without filling the page cache) and one
 * read in flight while the previous chunk is written; other formats read through the Disk.
 */
function chunkReader(source: Disk, chunks: readonly { at: number; length: number }[]): ChunkReader {
  let index = 0;
  if (source instanceof RawFileDisk) {
    const reader = SourceReader.open(source.path, CHUNK);
    // Several reads in flight: O_DIRECT has no kernel read-ahead to hide the device's latency.
    const lanes: ReadLane[] = Array.from({ length: READS_IN_FLIGHT + 1 }, () => reader.createLane());
    const start = (i: number): Promise<Buffer> | undefined => (i < chunks.length ? reader.read(lanes[i % lanes.length]!, chunks[i]!.at, chunks[i]!.length) : undefined);
    const pending: (Promise<Buffer> | undefined)[] = [];
    for (let i = 0; i < READS_IN_FLIGHT; i++) pending.push(start(i));
    for (const p of pending) void p?.catch(() => undefined);
    return {
      async next() {
        const current = pending.shift();
        if (!current) return undefined;
        const data = await current;
        const next = start(index + READS_IN_FLIGHT);
        void next?.catch(() => undefined);
        pending.push(next);
        index++;
        if (data.length !== chunks[index - 1]!.length) throw new DiskwrightError('E_IO', `${source.path} changed size during the conversion`, { path: source.path });
        return data;
      },
      close: () => {
        // Reads still in flight finish into their lanes; the descriptors close after them.
        const inFlight = pending.splice(0).filter((p) => p !== undefined);
        void Promise.allSettled(inFlight).then(() => reader.close());
      },
    };
  }
  const buffer = new Uint8Array(CHUNK);
  return {
    async next() {
      const chunk = chunks[index++];
      if (!chunk) return undefined;
      const view = buffer.subarray(0, chunk.length);
      source.read(view, chunk.at);
      return view;
    },
    close: () => undefined,
  };
}

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

/** Bytes read per step. A multiple of every cluster size. */
const CHUNK = 4 * 1024 * 1024;
/** Zero detection granularity for raw output (qemu-img's default -S 4k). */
const RAW_BLOCK = 4096;
const ZEROS = new Uint8Array(CHUNK);
/** Raw sources: reads kept in flight ahead of the writer. */
const READS_IN_FLIGHT = 4;

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

function isZero(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).equals(ZEROS.subarray(0, bytes.length));
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
 */
export async function convertDisk(source: Disk, output: string, options: Omit<ConvertOptions, 'inputFormat'>): Promise<ConvertSummary> {
  const started = performance.now();
  const size = source.size;
  let dataBytes = 0;
  await withAtomicPath(
    output,
    async (temp) => {
      const block = options.outputFormat === 'qcow2' ? (options.clusterSize ?? DEFAULT_CLUSTER_SIZE) : RAW_BLOCK;
      let sink: { write(bytes: Uint8Array, at: number): void; close(): void };
      let qcow: Qcow2Disk | undefined;
      if (options.outputFormat === 'qcow2') {
        createQcow2(temp, { size, clusterSize: block });
        qcow = Qcow2Disk.open(temp, { readOnly: false });
        sink = qcow;
        if (qcow.size !== size) throw new DiskwrightError('E_INVALID_ARGUMENT', `the input size ${size} is not a multiple of 512 bytes`, { path: source.path, hint: 'qcow2 sizes are whole sectors' });
      } else {
        const fd = openSync(temp, 'wx+', 0o644);
        ftruncateSync(fd, size);
        sink = { write: (bytes, at) => writeFully(fd, bytes, at, temp), close: () => closeSync(fd) };
      }
      try {
        const chunks: { at: number; length: number }[] = [];
        let previousEnd = 0;
        for (const r of dataRanges(source, 0, size)) {
          // Whole blocks: qcow2 clusters are then written without a copy-on-write read.
          const start = Math.max(previousEnd, Math.floor(r.start / block) * block);
          const end = Math.min(size, Math.ceil((r.start + r.length) / block) * block);
          for (let at = start; at < end; at += CHUNK) chunks.push({ at, length: Math.min(CHUNK, end - at) });
          previousEnd = Math.max(previousEnd, end);
        }
        const reader = chunkReader(source, chunks);
        try {
          for (const { at, length } of chunks) {
            throwIfAborted(options.signal);
            const chunk = (await reader.next())!;
            if (options.compress && qcow) dataBytes += await writeCompressedChunk(qcow, chunk, at, block);
            else dataBytes += writeNonZero(sink, chunk, at, block);
            options.onProgress?.({ bytes: Math.min(size, at + length), total: size });
          }
        } finally {
          reader.close();
        }
        options.onProgress?.({ bytes: size, total: size });
      } finally {
        sink.close();
      }
      recordFormat(temp, options.outputFormat);
    },
    { overwrite: options.overwrite, signal: options.signal },
  );
  return { format: options.outputFormat, bytes: size, dataBytes, seconds: (performance.now() - started) / 1000 };
}

/** Writes the non-zero blocks of `chunk` in contiguous runs; returns the bytes written. */
function writeNonZero(sink: { write(bytes: Uint8Array, at: number): void }, chunk: Uint8Array, at: number, block: number): number {
  let written = 0;
  let runStart = -1;
  for (let off = 0; off <= chunk.length; off += block) {
    const nonZero = off < chunk.length && !isZero(chunk.subarray(off, Math.min(chunk.length, off + block)));
    if (nonZero && runStart < 0) runStart = off;
    if (!nonZero && runStart >= 0) {
      const end = Math.min(off, chunk.length);
      sink.write(chunk.subarray(runStart, end), at + runStart);
      written += end - runStart;
      runStart = -1;
    }
  }
  return written;
}

/** Compresses the non-zero clusters of `chunk` in parallel (libuv thread pool) and stores them. */
async function writeCompressedChunk(disk: Qcow2Disk, chunk: Uint8Array, at: number, clusterSize: number): Promise<number> {
  const jobs: Promise<{ cluster: number; data: Uint8Array; compressed: Uint8Array | undefined }>[] = [];
  for (let off = 0; off < chunk.length; off += clusterSize) {
    const piece = chunk.subarray(off, Math.min(chunk.length, off + clusterSize));
    if (isZero(piece)) continue;
    const full = new Uint8Array(clusterSize);
    full.set(piece);
    jobs.push(compressCluster(full).then((compressed) => ({ cluster: (at + off) / clusterSize, data: piece, compressed })));
  }
  let written = 0;
  for (const { cluster, data, compressed } of await Promise.all(jobs)) {
    if (compressed) disk.writeCompressed(cluster, compressed);
    else disk.write(data, cluster * clusterSize);
    written += data.length;
  }
  return written;
}
