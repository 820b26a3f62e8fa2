import { closeSync, ftruncateSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitOverlay, Overlay, RawFileDisk, type Disk } from '../../../src/disk/index.js';
import { tempDir } from '../../helpers/tmp.js';

const MiB = 1024 * 1024;

/** `disk` with every byte read from it counted (the commit's reads of old contents). */
function counting(disk: Disk): { disk: Disk; read: () => number } {
  let bytes = 0;
  const wrapped: Disk = Object.create(disk, {
    read: { value: (buffer: Uint8Array, position: number) => ((bytes += buffer.length), disk.read(buffer, position)) },
  });
  return { disk: wrapped, read: () => bytes };
}

describe('commitOverlay over holes', () => {
  it('records the old contents of holes as holes without reading them, and skips discards of holes', async () => {
    const dir = await tempDir();
    const file = join(dir, 'sparse.img');
    // 64 MiB, data only in the first and the last MiB: the rest is a hole.
    const fd = openSync(file, 'w');
    writeSync(fd, Buffer.alloc(MiB, 0x11), 0, MiB, 0);
    writeSync(fd, Buffer.alloc(MiB, 0x22), 0, MiB, 63 * MiB);
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    const raw = RawFileDisk.open(file, { readOnly: false });
    const { disk, read } = counting(raw);
    const overlay = new Overlay(disk);
    // As mke2fs writes a new filesystem: zeroed tables over the hole, a little data, one data block changed.
    overlay.discard(2 * MiB, 40 * MiB);
    overlay.write(Buffer.alloc(8 * MiB, 0x33), 48 * MiB);
    overlay.write(Buffer.alloc(4096, 0x44), 63 * MiB);
    const summary = commitOverlay(overlay);
    raw.close();

    // Only the one data block (4 KiB) had old bytes worth reading and saving.
    expect(read()).toBe(4096);
    expect(summary.undoBytes).toBe(4096);
    // The discard of the hole changed nothing: written are the 8 MiB and the one block.
    expect(summary.bytes).toBe(8 * MiB + 4096);
    const after = readFileSync(file);
    expect(after.subarray(2 * MiB, 42 * MiB).equals(Buffer.alloc(40 * MiB))).toBe(true);
    expect(after.subarray(48 * MiB, 56 * MiB).equals(Buffer.alloc(8 * MiB, 0x33))).toBe(true);
    expect(after.subarray(63 * MiB, 63 * MiB + 4096).equals(Buffer.alloc(4096, 0x44))).toBe(true);
    expect(after.subarray(63 * MiB + 4096).equals(Buffer.alloc(MiB - 4096, 0x22))).toBe(true);
    // Still sparse: the hole the discard covered took no space.
    expect(statSync(file).blocks * 512).toBeLessThan(12 * MiB);
  });
});
