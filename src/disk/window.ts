import { DiskwrightError } from '../errors.js';
import { checkRange } from './bounds.js';
import type { AllocationExtent, Disk } from './types.js';

/**
 * A byte range of another Disk (a partition, or a filesystem at an offset) as a Disk of its own:
 * position 0 is `offset` in the parent. Closing a window leaves the parent open.
 */
export class PartitionWindow implements Disk {
  readonly format;
  readonly path;
  readonly readOnly;

  constructor(
    readonly parent: Disk,
    readonly offset: number,
    readonly size: number,
  ) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0 || offset + size > parent.size) {
      throw new DiskwrightError('E_OUT_OF_RANGE', `the range ${offset}+${size} lies outside ${parent.path} (${parent.size} bytes)`, {
        path: parent.path,
        offset,
        expected: parent.size,
        hint: 'the partition table points past the end of the image: the image may be truncated',
      });
    }
    this.format = parent.format;
    this.path = parent.path;
    this.readOnly = parent.readOnly;
  }

  read(buffer: Uint8Array, position: number): void {
    checkRange(this.path, this.size, position, buffer.length);
    this.parent.read(buffer, this.offset + position);
  }

  write(buffer: Uint8Array, position: number): void {
    checkRange(this.path, this.size, position, buffer.length);
    this.parent.write(buffer, this.offset + position);
  }

  flush(): void {
    this.parent.flush();
  }

  discard(position: number, length: number): void {
    checkRange(this.path, this.size, position, length);
    this.parent.discard(this.offset + position, length);
  }

  allocation(position: number, length: number): AllocationExtent[] {
    checkRange(this.path, this.size, position, length);
    return this.parent.allocation(this.offset + position, length).map((e) => ({ ...e, position: e.position - this.offset }));
  }

  close(): void {
    // The parent belongs to whoever opened it.
  }
}
