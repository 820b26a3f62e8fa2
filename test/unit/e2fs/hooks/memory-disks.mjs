// Test-only disk factory for the worker's disk hook (plain .mjs: the worker imports it outside
// vitest). An in-memory Disk (src/disk/types.ts) seeded from a host file, whose final bytes
// afterRun() writes to another host file so host e2fsprogs can check them.
import { readFileSync, writeFileSync } from 'node:fs';

const CHUNK = 65536;

/** A sparse in-memory Disk: 64 KiB chunks, absent chunks read as zeros. Counts calls. */
export class MemoryDisk {
  constructor({ size, readOnly = false, growable = true, seed, failReads = false, closeMarker }) {
    this.failReads = failReads;
    this.closeMarker = closeMarker;
    this.size = size;
    this.readOnly = readOnly;
    this.format = 'raw';
    this.path = '(memory)';
    this.chunks = new Map();
    this.stats = { reads: 0, writes: 0, flushes: 0, discards: 0, resizes: [], closed: 0, maxPosition: 0 };
    if (seed) this.load(seed);
    if (!growable) this.resize = undefined;
  }

  load(bytes) {
    for (let at = 0; at < Math.min(bytes.length, this.size); at += CHUNK) {
      const part = bytes.subarray(at, Math.min(at + CHUNK, bytes.length));
      if (part.some((b) => b !== 0)) {
        const chunk = new Uint8Array(CHUNK);
        chunk.set(part);
        this.chunks.set(at / CHUNK, chunk);
      }
    }
  }

  check(position, length) {
    if (!Number.isSafeInteger(position) || position < 0 || position + length > this.size) {
      throw Object.assign(new Error(`out of range: ${position}+${length} > ${this.size}`), { code: 'E_OUT_OF_RANGE' });
    }
    this.stats.maxPosition = Math.max(this.stats.maxPosition, position + length);
  }

  each(position, length, fn) {
    let done = 0;
    while (done < length) {
      const at = position + done;
      const index = Math.floor(at / CHUNK);
      const inner = at % CHUNK;
      const n = Math.min(CHUNK - inner, length - done);
      fn(index, inner, done, n);
      done += n;
    }
  }

  read(buffer, position) {
    // failReads: true throws a plain Error; a code (E_…) throws an error carrying it, as a DiskwrightError does.
    if (typeof this.failReads === 'string') throw Object.assign(new Error('injected damaged read'), { code: this.failReads, hint: 'injected hint', offset: position });
    if (this.failReads) throw new Error('injected read failure');
    this.check(position, buffer.length);
    this.stats.reads++;
    this.each(position, buffer.length, (index, inner, done, n) => {
      const chunk = this.chunks.get(index);
      if (chunk) buffer.set(chunk.subarray(inner, inner + n), done);
      else buffer.fill(0, done, done + n);
    });
  }

  write(buffer, position) {
    if (this.readOnly) throw new Error('read-only');
    this.check(position, buffer.length);
    this.stats.writes++;
    this.each(position, buffer.length, (index, inner, done, n) => {
      let chunk = this.chunks.get(index);
      if (!chunk) {
        chunk = new Uint8Array(CHUNK);
        this.chunks.set(index, chunk);
      }
      chunk.set(buffer.subarray(done, done + n), inner);
    });
  }

  flush() {
    this.stats.flushes++;
  }

  discard(position, length) {
    this.check(position, length);
    this.stats.discards++;
    this.each(position, length, (index, inner, done, n) => {
      const chunk = this.chunks.get(index);
      if (!chunk) return;
      if (n === CHUNK) this.chunks.delete(index);
      else chunk.fill(0, inner, inner + n);
    });
  }

  allocation(position, length) {
    return [{ position, length, state: 'data' }];
  }

  resize(size) {
    this.stats.resizes.push(size);
    for (const index of [...this.chunks.keys()]) if (index * CHUNK >= size) this.chunks.delete(index);
    const last = this.chunks.get(Math.floor(size / CHUNK));
    if (last && size % CHUNK) last.fill(0, size % CHUNK);
    this.size = size;
  }

  close() {
    this.stats.closed++;
    if (this.closeMarker) writeFileSync(this.closeMarker, `closed ${this.stats.closed}`);
  }

  bytes() {
    const out = new Uint8Array(this.size);
    for (const [index, chunk] of this.chunks) {
      const at = index * CHUNK;
      if (at < this.size) out.set(chunk.subarray(0, Math.min(CHUNK, this.size - at)), at);
    }
    return out;
  }
}

/**
 * args: { disks: [{ path, size, readOnly?, growable?, seedFrom?: host file, saveTo?: host file }] }.
 */
export function createDisks(args) {
  const map = {};
  for (const spec of args.disks) {
    const seed = spec.seedFrom ? readFileSync(spec.seedFrom) : undefined;
    const disk = new MemoryDisk({ size: spec.size ?? seed.length, readOnly: spec.readOnly, growable: spec.growable !== false, seed,
      failReads: spec.failReads, closeMarker: spec.closeMarker });
    disk.saveTo = spec.saveTo;
    map[spec.path] = disk;
  }
  return map;
}

/** Saves each disk's bytes where asked; reports the call counts (before close). */
export function afterRun(disks, result) {
  const report = { exitCode: result.exitCode, disks: {} };
  for (const [path, disk] of Object.entries(disks)) {
    if (disk.saveTo) writeFileSync(disk.saveTo, disk.bytes());
    report.disks[path] = { size: disk.size, ...disk.stats, closedBeforeAfterRun: disk.stats.closed };
  }
  return report;
}
