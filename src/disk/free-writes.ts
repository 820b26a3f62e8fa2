import { DiskwrightError } from '../errors.js';
import { testFaultPoint } from '../io/test-fault.js';
import { errnoOf } from './host-error.js';
import { OVERLAY_BLOCK, type Overlay } from './overlay.js';
import type { Disk } from './types.js';

/**
 * File data written straight into the image, before the commit, where the committed filesystem
 * cannot see it: into blocks that are free in its bitmaps (as of the session start). The old
 * filesystem never references them, so they need no undo record and no overlay copy; only the
 * metadata that makes them part of a file (bitmaps, inode, extent or indirect blocks) goes through
 * the overlay and the commit. The commit's one fsync of the image covers these writes too (one
 * file), and it comes before the record is removed: after a kill -9 at any point the filesystem
 * is the old one (free blocks may hold the new bytes) or the new one. When the session ends
 * without committing, or its commit fails, {@link undo} punches the blocks: the filesystem is the
 * old one, and blocks it does not use read as zeros (a sparse image's free space was holes, so
 * its bytes are the old ones; reading them first to tell would cost as much as writing them).
 */

/** A byte range of the image. */
export interface ImageRange {
  readonly position: number;
  readonly length: number;
}

/**
 * Routes a session's file-data writes: whole 4 KiB blocks the committed filesystem does not use
 * (`isUnused`) go to the image (`overlay.base`) directly, and the overlay forgets them; everything
 * else goes to the overlay.
 */
export class FreeBlockWriter {
  private readonly ranges: ImageRange[] = [];
  /** Bytes written in place so far (not yet undone). */
  bytesInPlace = 0;

  /**
   * @param overlay the session's overlay; its base is the image written in place
   * @param isUnused true when `[position, position + length)` of the image holds nothing the
   *   committed filesystem uses (free in its block bitmaps before the session)
   */
  constructor(
    private readonly overlay: Overlay,
    private readonly isUnused: (position: number, length: number) => boolean,
  ) {}

  private get base(): Disk {
    return this.overlay.base;
  }

  /** The ranges written in place (in write order, adjacent ones merged). */
  get inPlace(): readonly ImageRange[] {
    return this.ranges;
  }

  /**
   * Writes file data at image `position`. A failure writing in place (ENOSPC, EIO) undoes every
   * in-place write of the session before it is thrown.
   */
  write(buffer: Uint8Array, position: number): void {
    const piece = (from: number, to: number): Uint8Array => buffer.subarray(from - position, to - position);
    this.route(
      position,
      buffer.length,
      (from, to) => this.writeInPlace(piece(from, to), from),
      (from, to) => this.overlay.write(piece(from, to), from),
    );
  }

  /**
   * Makes image range `[position, +length)` of a file read as zeros without writing zeros where
   * it can: free blocks are punched in the image (they cost no space), the rest is discarded in
   * the overlay (the commit punches it). Failures undo as {@link write}'s do.
   */
  zero(position: number, length: number): void {
    this.route(
      position,
      length,
      (from, to) => this.changeInPlace(from, to - from, false, () => this.base.discard(from, to - from)),
      (from, to) => this.overlay.discard(from, to - from),
    );
  }

  /** Splits `[position, +length)` into whole free 4 KiB blocks (`inPlace`) and the rest (`overlay`). */
  private route(position: number, length: number, inPlace: (from: number, to: number) => void, overlay: (from: number, to: number) => void): void {
    const end = position + length;
    const first = Math.ceil(position / OVERLAY_BLOCK) * OVERLAY_BLOCK;
    const last = Math.min(Math.floor(end / OVERLAY_BLOCK) * OVERLAY_BLOCK, Math.floor(this.base.size / OVERLAY_BLOCK) * OVERLAY_BLOCK);
    if (last <= first) {
      overlay(position, end);
      return;
    }
    if (first > position) overlay(position, first);
    const direct = (at: number): boolean => this.isUnused(at, OVERLAY_BLOCK);
    let at = first;
    while (at < last) {
      const free = direct(at);
      let stop = at + OVERLAY_BLOCK;
      while (stop < last && direct(stop) === free) stop += OVERLAY_BLOCK;
      if (free) inPlace(at, stop);
      else overlay(at, stop);
      at = stop;
    }
    if (end > last) overlay(last, end);
  }

  private writeInPlace(bytes: Uint8Array, position: number): void {
    this.changeInPlace(position, bytes.length, true, () => {
      const base = this.base;
      if (base.writeBulk) base.writeBulk(bytes, position);
      else {
        base.write(bytes, position);
        // Large files are written in big pieces: the disk starts on each while the next is read.
        base.startWriteback?.(position, bytes.length);
      }
    });
  }

  /** Runs `change` on image range `[position, +length)` in place, recorded for {@link undo}; `written`: it writes bytes (not a punch). */
  private changeInPlace(position: number, length: number, written: boolean, change: () => void): void {
    try {
      testFaultPoint('direct');
      this.note(position, length);
      change();
    } catch (error) {
      const undoError = this.tryUndo();
      const errno = errnoOf(error);
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      throw new DiskwrightError(error instanceof DiskwrightError ? error.code : 'E_IO', `${this.base.path}: ${message}; nothing was changed (the commit was rolled back)${undoError ? ` but punching the written blocks again failed (${undoError})` : ''}`, {
        path: this.base.path,
        cause: error,
        hint: errno === 'ENOSPC' ? 'free some space on the filesystem holding the image and run the command again' : undefined,
      });
    }
    // The overlay's copies of these blocks (a tool zeroed them when it allocated them) are stale.
    this.overlay.forget(position, length);
    if (written) this.bytesInPlace += length;
  }

  private note(position: number, length: number): void {
    const last = this.ranges.at(-1);
    if (last && last.position + last.length === position) this.ranges[this.ranges.length - 1] = { position: last.position, length: last.length + length };
    else this.ranges.push({ position, length });
  }

  private tryUndo(): string | undefined {
    try {
      this.undo();
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message.split('\n')[0] : String(error);
    }
  }

  /** Punches every block written in place (the filesystem does not use them); idempotent. */
  undo(): void {
    while (this.ranges.length > 0) {
      const range = this.ranges[this.ranges.length - 1]!;
      this.base.discard(range.position, range.length);
      this.ranges.pop();
    }
    this.bytesInPlace = 0;
  }

  /** The commit made the in-place blocks part of the filesystem: nothing to undo any more. */
  keep(): void {
    this.ranges.length = 0;
  }
}
