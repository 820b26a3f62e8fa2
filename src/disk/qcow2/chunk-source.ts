import { DiskwrightError } from '../../errors.js';
import { DIRECT_ALIGN, SourceReader, type ReadLane } from '../../io/source.js';
import { RawFileDisk } from '../raw.js';
import type { Disk } from '../types.js';
import { PartitionWindow } from '../window.js';
import { Qcow2Disk } from './image.js';

/** A span of the source Disk that a conversion reads as one unit. */
export interface Chunk {
  readonly at: number;
  readonly length: number;
}

/**
 * Reads chunks of a Disk into per-lane buffers, several at once. Each read resolves with a view of
 * the chunk valid until the same lane is read into again.
 */
export interface ChunkSource {
  /** Lanes (buffers) this source reads into; a lane is reused only after its chunk is consumed. */
  readonly lanes: number;
  read(chunk: Chunk, lane: number): Promise<Uint8Array>;
  close(): void;
}

/** Looks through partition windows: the Disk that stores the bytes and where the window starts in it. */
function unwrap(disk: Disk): { base: Disk; offset: number } {
  let offset = 0;
  let base = disk;
  while (base instanceof PartitionWindow) {
    offset += base.offset;
    base = base.parent;
  }
  return { base, offset };
}

/**
 * The fastest way to read `source` here: a raw file with O_DIRECT (holes come back without filling
 * the page cache) and several reads in flight; a qcow2 image by reading its host data runs
 * directly, several at once, zero-filling what is unallocated; anything else (compressed
 * clusters, backing layers, other Disks) through the synchronous Disk read. `direct: false`
 * reads a raw file through the page cache; a qcow2's data runs are read through it unless
 * `direct: true`.
 */
export function openChunkSource(source: Disk, maxChunk: number, lanes: number, options: { direct?: boolean } = {}): ChunkSource {
  const { base, offset } = unwrap(source);
  if (base instanceof RawFileDisk) return rawSource(base, offset, maxChunk, lanes, options.direct);
  if (base instanceof Qcow2Disk) return qcow2Source(base, offset, maxChunk, lanes, options.direct);
  return syncSource(source, maxChunk, lanes);
}

function rawSource(disk: RawFileDisk, offset: number, maxChunk: number, count: number, direct: boolean | undefined): ChunkSource {
  // The open Disk's own file (reopened through /proc/self/fd for O_DIRECT), never a second open by name.
  const reader = SourceReader.forRawDisk(disk, maxChunk, { direct });
  const lanes: ReadLane[] = Array.from({ length: count }, () => reader.createLane());
  return {
    lanes: count,
    async read(chunk, lane) {
      const data = await reader.read(lanes[lane]!, offset + chunk.at, chunk.length);
      if (data.length !== chunk.length) throw new DiskwrightError('E_IO', `${disk.path} changed size during the conversion`, { path: disk.path });
      return data;
    },
    close: () => reader.close(),
  };
}

function qcow2Source(disk: Qcow2Disk, offset: number, maxChunk: number, count: number, direct: boolean | undefined): ChunkSource {
  // The data runs are read from the image's own file through the page cache, straight into the
  // chunk buffer (readInto: no copy), or with O_DIRECT when asked (`direct: true`). Measured
  // 2026-12-02 (extract p1 from the bench's qcow2, single-run sequences, docs/qcow2.md): buffered
  // 0.73–1.39 s (median 0.98) against O_DIRECT 1.17–1.29 s (1.21) on a quiet VM, alike (~2.35 s)
  // beside a CPU burner and a write loop; an earlier round had measured buffered 2–3× slower
  // cold, with the bounce copy this path no longer makes.
  const reader = SourceReader.forRawDisk({ fd: disk.hostFd, path: disk.path, size: disk.fileLength }, maxChunk, { direct: direct === true });
  // Each chunk's buffer is an aligned lane itself, so a data run at an aligned place in it (every
  // run of a usual qcow2 at an aligned guest offset) is read straight into it; a bounce lane per
  // chunk buffer serves the others (a partition at sector 63) with one copy.
  const chunks: ReadLane[] = Array.from({ length: count }, () => reader.createLane());
  const bounce: (ReadLane | undefined)[] = new Array(count);
  const readBounced = async (lane: number, position: number, length: number, part: Buffer): Promise<number> => {
    const bytes = await reader.read((bounce[lane] ??= reader.createLane()), position, length);
    part.set(bytes);
    return bytes.length;
  };
  return {
    lanes: count,
    async read(chunk, lane) {
      const target = chunks[lane]!;
      const view = target.buffer.subarray(0, chunk.length);
      const extents = disk.storage(offset + chunk.at, chunk.length);
      if (extents.some((e) => e.state === 'compressed' || e.state === 'backing')) {
        disk.read(view, offset + chunk.at);
        return view;
      }
      for (const e of extents) {
        const at = e.position - offset - chunk.at;
        const part = view.subarray(at, at + e.length);
        if (e.state !== 'data') {
          part.fill(0);
          continue;
        }
        const got = target.aligned && at % DIRECT_ALIGN === 0 ? await reader.readInto(part, e.host) : await readBounced(lane, e.host, e.length, part);
        // Past the end of the file reads as zeros, as in Disk.read.
        part.fill(0, got);
      }
      return view;
    },
    close: () => reader.close(),
  };
}

function syncSource(disk: Disk, maxChunk: number, count: number): ChunkSource {
  const buffers = Array.from({ length: count }, () => Buffer.allocUnsafeSlow(maxChunk));
  return {
    lanes: count,
    read(chunk, lane) {
      const view = buffers[lane]!.subarray(0, chunk.length);
      disk.read(view, chunk.at);
      return Promise.resolve(view);
    },
    close: () => undefined,
  };
}
