import { openChunkSource, type ChunkSource } from '../disk/qcow2/chunk-source.js';
import { dataRanges } from '../disk/qcow2/convert.js';
import type { Disk } from '../disk/types.js';
import type { Extent } from './extents.js';

/**
 * A Disk as the copy engine's source: {@link dataExtents} says which ranges may hold data (holes,
 * zero and unallocated clusters are skipped without reading them), and reads go through the
 * block layer's fastest reader for the format (openChunkSource: a raw file, also under partition
 * windows, with O_DIRECT and several reads in flight; a qcow2 by its host data runs, several at
 * once; anything else through `Disk.read`). One lane per concurrent reader.
 */
export class DiskSource {
  readonly size: number;
  readonly path: string;
  private readonly chunks: ChunkSource;
  private closed = false;

  private constructor(
    readonly disk: Disk,
    readonly maxRead: number,
    lanes: number,
    direct: boolean | undefined,
  ) {
    this.size = disk.size;
    this.path = disk.path;
    this.chunks = openChunkSource(disk, maxRead, lanes, { direct });
  }

  /** A source over `disk` (which the caller keeps and closes) for `lanes` readers of up to `maxRead` bytes. */
  static open(disk: Disk, maxRead: number, options: { lanes: number; direct?: boolean }): DiskSource {
    return new DiskSource(disk, maxRead, options.lanes, options.direct);
  }

  /** Concurrent readers this source has buffers for. */
  get lanes(): number {
    return this.chunks.lanes;
  }

  /**
   * The parts of `[start, start + length)` that may hold non-zero bytes (allocation through the
   * backing chain), as extents relative to `start`.
   */
  dataExtents(start: number, length: number): Extent[] {
    if (length === 0) return [];
    return dataRanges(this.disk, start, length).map((r) => ({ start: r.start - start, length: r.length }));
  }

  /**
   * Reads `length` bytes at `position` into lane `lane` and returns a view of them, valid until
   * that lane's next read.
   */
  async read(lane: number, position: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new Error('DiskSource used after close');
    if (length > this.maxRead) throw new RangeError(`read of ${length} bytes exceeds the source's limit of ${this.maxRead}`);
    return this.chunks.read({ at: position, length }, lane);
  }

  /** Idempotent; leaves the Disk open. Call it only once no read is in flight. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks.close();
  }
}
