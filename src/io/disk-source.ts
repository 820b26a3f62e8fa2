import { RawFileDisk } from '../disk/raw.js';
import { PartitionWindow } from '../disk/window.js';
import { dataRanges } from '../disk/qcow2/convert.js';
import type { Disk } from '../disk/types.js';
import { DiskwrightError } from '../errors.js';
import type { Extent } from './extents.js';
import { SourceReader, type ReadLane } from './source.js';

/** A raw file under a chain of windows: where a Disk's bytes really are. */
function rawBase(disk: Disk): { raw: RawFileDisk; offset: number } | undefined {
  let offset = 0;
  let at: Disk = disk;
  while (at instanceof PartitionWindow) {
    offset += at.offset;
    at = at.parent;
  }
  return at instanceof RawFileDisk ? { raw: at, offset } : undefined;
}

/** Read lane of a Disk that is not a raw file: a plain buffer of the largest read. */
class PlainLane {
  readonly buffer: Buffer;
  constructor(span: number) {
    this.buffer = Buffer.allocUnsafeSlow(span);
  }
}

/**
 * A Disk as the copy engine's source. Where the Disk is a raw file (or a partition window of one)
 * reads go to the host file asynchronously, with O_DIRECT where allowed, so several can be in
 * flight ({@link SourceReader}); any other format (qcow2, an overlay) reads through `Disk.read`.
 * Either way {@link dataExtents} says which ranges may hold data, so holes, zero clusters and
 * unallocated ranges are skipped without reading them.
 */
export class DiskSource {
  readonly size: number;
  readonly path: string;
  private readonly base: { reader: SourceReader; offset: number } | undefined;
  private closed = false;

  private constructor(
    readonly disk: Disk,
    readonly maxRead: number,
    direct: boolean | undefined,
  ) {
    this.size = disk.size;
    this.path = disk.path;
    const raw = rawBase(disk);
    this.base = raw ? { reader: SourceReader.forRawDisk(raw.raw, maxRead, { direct }), offset: raw.offset } : undefined;
  }

  /** A source over `disk` (which the caller keeps and closes) for reads of up to `maxRead` bytes. */
  static open(disk: Disk, maxRead: number, options: { direct?: boolean } = {}): DiskSource {
    return new DiskSource(disk, maxRead, options.direct);
  }

  /** True while reads bypass the page cache. */
  get direct(): boolean {
    return this.base?.reader.direct ?? false;
  }

  /**
   * The parts of `[start, start + length)` that may hold non-zero bytes (allocation through the
   * backing chain), as extents relative to `start`.
   */
  dataExtents(start: number, length: number): Extent[] {
    if (length === 0) return [];
    return dataRanges(this.disk, start, length).map((r) => ({ start: r.start - start, length: r.length }));
  }

  /** A buffer for one concurrent reader. */
  createLane(): ReadLane | PlainLane {
    return this.base ? this.base.reader.createLane() : new PlainLane(this.maxRead);
  }

  /**
   * Reads `length` bytes at `position` into `lane` and returns a view of them, valid until the
   * lane's next read. Short only where a raw file ends early (another process truncated it).
   */
  async read(lane: ReadLane | PlainLane, position: number, length: number): Promise<Buffer> {
    if (this.closed) throw new Error('DiskSource used after close');
    if (length > this.maxRead) throw new RangeError(`read of ${length} bytes exceeds the source's limit of ${this.maxRead}`);
    if (this.base) return this.base.reader.read(lane as ReadLane, this.base.offset + position, length);
    if (position + length > this.size) {
      throw new DiskwrightError('E_OUT_OF_RANGE', `read of ${length} bytes at ${position} is outside ${this.path} (${this.size} bytes)`, { path: this.path, offset: position });
    }
    const view = lane.buffer.subarray(0, length);
    this.disk.read(view, position);
    return view;
  }

  /** Idempotent; leaves the Disk open. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.base?.reader.close();
  }
}
