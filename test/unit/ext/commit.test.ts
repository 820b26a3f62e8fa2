import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSync, writeSync, closeSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commitRuns, recoverInterruptedCommit, undoLogPath } from '../../../src/ext/commit.js';
import { OverlayDisk, OVERLAY_CHUNK, type OverlayRun } from '../../../src/ext/overlay.js';
import { tempDir } from '../../helpers/tmp.js';

const SIZE = 64 * 1024;

/** An image with non-zero bytes in its first half and zeros (a hole) in the second. */
async function makeFile(dir: string, name: string): Promise<{ path: string; before: Buffer }> {
  const before = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE / 2; i += 1) before[i] = (i * 31 + 7) & 0xff;
  const path = join(dir, name);
  await writeFile(path, before);
  return { path, before };
}

const writes = fc.array(fc.tuple(fc.integer({ min: 0, max: SIZE - 1 }), fc.integer({ min: 1, max: 9000 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 });

function stage(path: string): { disk: OverlayDisk; fd: number } {
  const fd = openSync(path, 'r');
  return { disk: new OverlayDisk(fd, 0, SIZE), fd };
}

describe('crash-safe commit', () => {
  it('writes exactly the staged bytes and removes the undo log', async () => {
    const dir = await tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(writes, async (list) => {
        const { path, before } = await makeFile(dir, `ok-${n++}.img`);
        const { disk, fd } = stage(path);
        const expected = Buffer.from(before);
        for (const [at, len, value] of list) {
          const length = Math.min(len, SIZE - at);
          disk.writeFrom(Buffer.alloc(length, value), 0, length, at);
          expected.fill(value, at, at + length);
        }
        closeSync(fd);
        await commitRuns(path, () => disk.runs());
        expect((await readFile(path)).equals(expected)).toBe(true);
        await expect(stat(undoLogPath(path))).rejects.toThrow();
      }),
      { numRuns: 30 },
    );
  });

  it('rolls an interrupted commit back to byte-identical from the undo log', async () => {
    const dir = await tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(writes, fc.nat(), async (list, cut) => {
        const { path, before } = await makeFile(dir, `crash-${n++}.img`);
        const { disk, fd } = stage(path);
        for (const [at, len, value] of list) {
          const length = Math.min(len, SIZE - at);
          disk.writeFrom(Buffer.alloc(length, value), 0, length, at);
        }
        closeSync(fd);
        const runs: OverlayRun[] = [...disk.runs()];
        // Crash after the log is durable, with only some runs (and part of one) applied.
        const crash = (): void => {
          const out = openSync(path, 'r+');
          const upto = cut % (runs.length + 1);
          for (const run of runs.slice(0, upto)) {
            let at = run.offset;
            for (const chunk of run.chunks.slice(0, Math.max(1, run.chunks.length - 1))) at += writeSync(out, chunk, 0, chunk.length, at);
          }
          closeSync(out);
          throw new Error('simulated crash');
        };
        await expect(commitRuns(path, () => disk.runs(), { onLogDurable: crash })).rejects.toThrow('simulated crash');
        expect((await stat(undoLogPath(path))).isFile()).toBe(true);
        expect(await recoverInterruptedCommit(path)).toBe(true);
        expect((await readFile(path)).equals(before)).toBe(true);
        expect(await recoverInterruptedCommit(path)).toBe(false);
      }),
      { numRuns: 30 },
    );
  });

  it('saves no bytes for ranges that were free before the session', async () => {
    const dir = await tempDir();
    const { path } = await makeFile(dir, 'free.img');
    const fd = openSync(path, 'r');
    const disk = new OverlayDisk(fd, 0, SIZE);
    disk.writeFrom(Buffer.alloc(8 * OVERLAY_CHUNK, 1), 0, 8 * OVERLAY_CHUNK, 0);
    closeSync(fd);
    const all = await commitRuns(path, () => disk.runs(), { wasFree: () => true });
    expect(all.undoBytes).toBe(0);
  });

  it('refuses a damaged undo log without touching the image', async () => {
    const dir = await tempDir();
    const { path, before } = await makeFile(dir, 'damaged.img');
    await writeFile(undoLogPath(path), Buffer.from('DWUNDO01 but not really a log'));
    await expect(recoverInterruptedCommit(path)).rejects.toMatchObject({ code: 'E_IO' });
    expect((await readFile(path)).equals(before)).toBe(true);
  });
});

describe('OverlayDisk', () => {
  it('reads back the image with every staged write on top, and leaves the file untouched', async () => {
    const dir = await tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(writes, fc.integer({ min: 0, max: SIZE - 1 }), fc.integer({ min: 1, max: SIZE }), async (list, readAt, readLen) => {
        const { path, before } = await makeFile(dir, `ov-${n++}.img`);
        const fd = openSync(path, 'r');
        const disk = new OverlayDisk(fd, 0, SIZE);
        const model = Buffer.from(before);
        for (const [at, len, value] of list) {
          const length = Math.min(len, SIZE - at);
          disk.writeFrom(Buffer.alloc(length, value), 0, length, at);
          model.fill(value, at, at + length);
        }
        const length = Math.min(readLen, SIZE - readAt);
        const out = Buffer.alloc(length);
        disk.readInto(out, 0, length, readAt);
        closeSync(fd);
        expect(out.equals(model.subarray(readAt, readAt + length))).toBe(true);
        expect((await readFile(path)).equals(before)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('rejects accesses outside its container', async () => {
    const dir = await tempDir();
    const { path } = await makeFile(dir, 'range.img');
    const fd = openSync(path, 'r');
    const disk = new OverlayDisk(fd, 0, SIZE);
    expect(() => disk.readInto(Buffer.alloc(10), 0, 10, SIZE - 5)).toThrow(expect.objectContaining({ code: 'E_OUT_OF_RANGE' }));
    expect(() => disk.writeFrom(Buffer.alloc(10), 0, 10, -1)).toThrow(expect.objectContaining({ code: 'E_OUT_OF_RANGE' }));
    closeSync(fd);
  });
});
