import type { AllocationExtent, Disk } from '../../src/disk/types.js';

/** An errno-style host error, as Node's fs throws it. */
export function hostErrno(code: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: injected`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}

/**
 * A Disk over a sparse file that runs out of space: it models which 4 KiB blocks are allocated
 * (initially those that do not read as zeros), lets writes into allocated blocks through (they need
 * no space), allocates at most `freeBlocks` more and then fails with `code` — after writing the
 * part of the buffer that fit, like a real short write. Discards free blocks again. A commit whose
 * rollback needed more space than the commit used would fail here.
 */
export class FaultyDisk implements Disk {
  private readonly allocated = new Set<number>();
  /** Blocks allocated so far (the most space the run used). */
  used = 0;
  constructor(
    readonly inner: Disk,
    public freeBlocks: number,
    readonly code = 'ENOSPC',
  ) {
    const block = Buffer.alloc(4096);
    for (let at = 0; at < inner.size; at += 4096) {
      const piece = block.subarray(0, Math.min(4096, inner.size - at));
      inner.read(piece, at);
      if (piece.some((b) => b !== 0)) this.allocated.add(at / 4096);
    }
  }
  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get format(): Disk['format'] {
    return this.inner.format;
  }
  get path(): string {
    return this.inner.path;
  }
  read(buffer: Uint8Array, position: number): void {
    this.inner.read(buffer, position);
  }
  write(buffer: Uint8Array, position: number): void {
    const first = Math.floor(position / 4096);
    const last = Math.floor((position + buffer.length - 1) / 4096);
    for (let b = first; b <= last; b += 1) {
      if (this.allocated.has(b)) continue;
      if (this.freeBlocks === 0) {
        const fits = Math.max(0, b * 4096 - position);
        if (fits > 0) this.inner.write(buffer.subarray(0, fits), position);
        throw hostErrno(this.code);
      }
      this.freeBlocks -= 1;
      this.used += 1;
      this.allocated.add(b);
    }
    this.inner.write(buffer, position);
  }
  flush(): void {
    this.inner.flush();
  }
  discard(position: number, length: number): void {
    this.inner.discard(position, length);
    for (let b = Math.ceil(position / 4096); (b + 1) * 4096 <= position + length; b += 1) {
      if (this.allocated.delete(b)) this.freeBlocks += 1;
    }
  }
  allocation(position: number, length: number): AllocationExtent[] {
    return this.inner.allocation(position, length);
  }
  resize(size: number): void {
    this.inner.resize!(size);
    for (const b of [...this.allocated]) {
      if (b * 4096 >= size && this.allocated.delete(b)) this.freeBlocks += 1;
    }
  }
  close(): void {
    this.inner.close();
  }
}
