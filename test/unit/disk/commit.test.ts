import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { copyFileSync, ftruncateSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { commitOverlay, hasPendingRecord, Overlay, prepareRecord, PREPARED_RECORD_BYTES, RawFileDisk, recordPath, rollBackInterruptedCommit, type CommitStep } from '../../../src/disk/index.js';
import { crc32 } from '../../../src/bytes/index.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { FaultyDisk } from '../../helpers/faulty-disk.js';
import { tempDir } from '../../helpers/tmp.js';

const SIZE = 256 * 1024;

/** A sparse file: data in some 4 KiB blocks, holes elsewhere. */
function makeSparse(file: string, seed: number): Buffer {
  const model = Buffer.alloc(SIZE);
  const fd = openSync(file, 'w');
  for (let b = 0; b < SIZE / 4096; b += 1) {
    if ((b * 7 + seed) % 3 === 0) continue;
    const block = Buffer.alloc(4096, ((b + seed) % 250) + 1);
    writeSync(fd, block, 0, 4096, b * 4096);
    block.copy(model, b * 4096);
  }
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  return model;
}

interface Change {
  position: number;
  length: number;
  zero: boolean;
  seed: number;
}
const change: fc.Arbitrary<Change> = fc.record({ position: fc.nat(SIZE - 1), length: fc.integer({ min: 1, max: 40000 }), zero: fc.boolean(), seed: fc.integer({ min: 1, max: 200 }) });

/** Applies changes to the overlay and to a model; returns the model. */
function stage(overlay: Overlay, before: Buffer, changes: readonly Change[], grow: number): Buffer {
  let model = Buffer.from(before);
  if (grow > 0) {
    overlay.resize(before.length + grow);
    model = Buffer.concat([model, Buffer.alloc(grow)]);
  }
  for (const c of changes) {
    const length = Math.min(c.length, model.length - c.position);
    if (c.zero) {
      overlay.discard(c.position, length);
      model.fill(0, c.position, c.position + length);
    } else {
      const data = Buffer.alloc(length, c.seed);
      overlay.write(data, c.position);
      data.copy(model, c.position);
    }
  }
  return model;
}

describe('commitOverlay', () => {
  it('writes exactly the changed blocks, grows the file and removes its record', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 1);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    const after = stage(overlay, before, [{ position: 5000, length: 10000, zero: false, seed: 9 }, { position: 65536, length: 8192, zero: true, seed: 1 }], 8192);
    const steps: CommitStep['phase'][] = [];
    const summary = commitOverlay(overlay, { onStep: (s) => steps.push(s.phase) });
    disk.close();
    expect(readFileSync(file).equals(after)).toBe(true);
    expect(summary.blocks).toBe(3 + 2);
    expect(summary.size).toBe(SIZE + 8192);
    expect(steps).toEqual(['record', 'record', 'record-written', 'record-synced', 'record-durable', 'grow', 'write', 'write', 'written', 'flushed']);
    expect(hasPendingRecord(file)).toBe(false);
    expect(readdirSync(dir)).toEqual(['a.img']);
  });

  it('stores all-zero old blocks as holes and skips blocks the caller proves unused', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    makeSparse(file, 0);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    // Blocks 0 (hole: seed 0 → 0 % 3 === 0) .. 3 (data) change; block 2 is declared free.
    overlay.write(Buffer.alloc(4 * 4096, 5), 0);
    const summary = commitOverlay(overlay, { needsNoSave: (position) => position === 2 * 4096 });
    disk.close();
    // Data blocks among 0..3 other than block 2 are saved; holes (b*7 % 3 === 0) are not.
    const saved = [0, 1, 3].filter((b) => (b * 7) % 3 !== 0).length;
    expect(summary.undoBytes).toBe(saved * 4096);
  });

  it('a block rewritten with its old bytes is neither saved in the record nor written', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 1);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    // Blocks 1..6 rewritten (as libext2fs rewrites every bitmap on close); only block 4 really changes.
    const rewrite = Buffer.from(before.subarray(4096, 7 * 4096));
    rewrite.fill(0x42, 3 * 4096, 4 * 4096);
    overlay.write(rewrite, 4096);
    const writes: number[] = [];
    const summary = commitOverlay(overlay, { onStep: (s) => void (s.phase === 'write' && writes.push(s.position)) });
    disk.close();
    const after = Buffer.from(before);
    after.fill(0x42, 4 * 4096, 5 * 4096);
    expect(readFileSync(file).equals(after)).toBe(true);
    expect(writes).toEqual([4 * 4096]);
    expect(summary.bytes).toBe(4096);
    expect(summary.undoBytes).toBe((4 * 7 + 1) % 3 === 0 ? 0 : 4096);
  });

  it('ENOSPC at any point: the image is the old one, rollback needs no extra space, and the next commit succeeds', async () => {
    const dir = await tempDir();
    await fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 8 }), fc.nat(40), fc.integer({ min: 0, max: 16384 }), fc.integer({ min: 0, max: 1 << 30 }), (changes, free, grow, id) => {
        const file = join(dir, `f${id}.img`);
        const before = makeSparse(file, id % 5);
        const faulty = new FaultyDisk(RawFileDisk.open(file, { readOnly: false }), free);
        const overlay = new Overlay(faulty);
        const after = stage(overlay, before, changes, grow);
        let failed: unknown;
        try {
          commitOverlay(overlay);
        } catch (error) {
          failed = error;
        }
        const now = readFileSync(file);
        if (failed) {
          expect(isDiskwrightError(failed, 'E_IO')).toBe(true);
          expect(String((failed as Error).message)).toMatch(/ENOSPC.*rolled back/);
          expect(now.equals(before)).toBe(true);
          expect(existsSync(recordPath(file))).toBe(false);
          // More space: the same change now commits.
          faulty.freeBlocks = 1000;
          const retry = new Overlay(faulty);
          stage(retry, before, changes, grow);
          commitOverlay(retry);
          expect(readFileSync(file).equals(after)).toBe(true);
        } else {
          expect(now.equals(after)).toBe(true);
        }
        faulty.close();
        expect(readdirSync(dir).filter((n) => n.startsWith('.') || n.includes('undo'))).toEqual([]);
      }),
      { numRuns: 120 },
    );
  });

  it('a crash at any step leaves the old bytes, or the new ones once every changed block holds them', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 2);
    const changes: Change[] = [
      { position: 0, length: 9000, zero: false, seed: 7 },
      { position: 40000, length: 50000, zero: true, seed: 1 },
      { position: 120000, length: 30000, zero: false, seed: 8 },
    ];
    // Snapshot image + record at every step: each snapshot is what a kill -9 there leaves.
    const snapshots: { path: string; phase: CommitStep['phase'] }[] = [];
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    const after = stage(overlay, before, changes, 12288);
    commitOverlay(overlay, {
      onStep: (step) => {
        const snap = join(dir, `snap${snapshots.length}`);
        mkdirSync(snap);
        copyFileSync(file, join(snap, 'a.img'));
        if (existsSync(recordPath(file))) copyFileSync(recordPath(file), recordPath(join(snap, 'a.img')));
        snapshots.push({ path: join(snap, 'a.img'), phase: step.phase });
      },
    });
    disk.close();
    expect(readFileSync(file).equals(after)).toBe(true);
    expect(snapshots.length).toBeGreaterThan(4);
    for (const { path, phase } of snapshots) {
      rollBackInterruptedCommit(path);
      // After the last write every changed block holds its new bytes: the commit is complete.
      const expected = phase === 'written' || phase === 'flushed' ? after : before;
      expect(readFileSync(path).equals(expected), phase).toBe(true);
      expect(hasPendingRecord(path)).toBe(false);
    }
  });

  it('a record left by a commit that completed is dropped, not rolled back over the new bytes', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 2);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    const after = stage(overlay, before, [{ position: 4096, length: 20000, zero: false, seed: 3 }, { position: 100000, length: 9000, zero: true, seed: 1 }], 4096);
    let record: Buffer | undefined;
    commitOverlay(overlay, { onStep: (s) => void (s.phase === 'flushed' && (record = readFileSync(recordPath(file)))) });
    disk.close();
    expect(record!.subarray(0, 8).toString('latin1')).toBe('DWUNDO02');
    // A crash before the (unsynced) removal reached the disk brings the record back.
    writeFileSync(recordPath(file), record!);
    expect(rollBackInterruptedCommit(file)).toBe(false);
    expect(readFileSync(file).equals(after)).toBe(true);
    expect(hasPendingRecord(file)).toBe(false);
    // One block short of new (a write that did not land): rolled back to the old bytes.
    writeFileSync(recordPath(file), record!);
    const fd = openSync(file, 'r+');
    writeSync(fd, before.subarray(8192, 12288), 0, 4096, 8192);
    closeSync(fd);
    expect(rollBackInterruptedCommit(file)).toBe(true);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('a record of a session that also wrote outside the overlay always rolls back (it cannot prove completion)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 1);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    stage(overlay, before, [{ position: 0, length: 8192, zero: false, seed: 4 }], 0);
    let record: Buffer | undefined;
    commitOverlay(overlay, { outsideWrites: true, onStep: (s) => void (s.phase === 'flushed' && (record = readFileSync(recordPath(file)))) });
    disk.close();
    writeFileSync(recordPath(file), record!);
    expect(rollBackInterruptedCommit(file)).toBe(true);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('a record cut short or partly zero by a kill before its sync is dropped when the image is untouched, refused when it is not', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 3);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    const after = stage(overlay, before, [{ position: 0, length: 30000, zero: false, seed: 5 }, { position: 200000, length: 4096, zero: false, seed: 6 }], 0);
    let record: Buffer | undefined;
    commitOverlay(overlay, { onStep: (s) => void (s.phase === 'record-synced' && (record = readFileSync(recordPath(file)))) });
    disk.close();
    // What a kill before the record's sync can leave: a prefix, or 4 KiB blocks that never reached the disk (zeros).
    const partials: Buffer[] = [Buffer.alloc(0), Buffer.alloc(record!.length)];
    for (const cut of [1, 8, 23, 24, 47, 100, 4096, record!.length - 4, record!.length - 1]) partials.push(record!.subarray(0, cut));
    for (let b = 0; b * 4096 < record!.length; b += 1) {
      const holed = Buffer.from(record!);
      holed.fill(0, b * 4096, Math.min((b + 1) * 4096, holed.length));
      partials.push(holed);
    }
    for (const [i, partial] of partials.entries()) {
      writeFileSync(file, before);
      writeFileSync(recordPath(file), partial);
      expect(rollBackInterruptedCommit(file), `partial ${i}`).toBe(false);
      expect(readFileSync(file).equals(before), `partial ${i}`).toBe(true);
      expect(hasPendingRecord(file)).toBe(false);
      // The image written where a readable entry says it was not: the commit did start; refused.
      writeFileSync(file, after);
      writeFileSync(recordPath(file), partial);
      // Its first entry (block 0 was a hole: a zero entry) reads back whole.
      const readable = partial.length >= 48 && partial.subarray(0, 8).toString('latin1') === 'DWUNDO02';
      if (readable) {
        expect(() => rollBackInterruptedCommit(file), `partial ${i}`).toThrow(/damaged/);
        expect(readFileSync(file).equals(after)).toBe(true);
      }
    }
  });

  it('a record prepared ahead is not pending, takes the commit\'s record in its blocks, and goes away after the commit or without one', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 1);
    const disk = RawFileDisk.open(file, { readOnly: false });
    // No commit: released, nothing left.
    const unused = prepareRecord(file);
    await unused.ready;
    expect(existsSync(recordPath(file))).toBe(true);
    expect(hasPendingRecord(file)).toBe(false);
    await unused.release();
    expect(readdirSync(dir)).toEqual(['a.img']);
    // A commit: the record lands in the prepared file (a kill after its sync leaves it armed there).
    const prepared = prepareRecord(file);
    const ready = await prepared.ready;
    const overlay = new Overlay(disk);
    const after = stage(overlay, before, [{ position: 8192, length: 5000, zero: false, seed: 11 }], 0);
    let armed: Buffer | undefined;
    commitOverlay(overlay, { prepared: ready, onStep: (s) => void (s.phase === 'record-durable' && (armed = readFileSync(recordPath(file)))) });
    await prepared.release();
    disk.close();
    expect(readFileSync(file).equals(after)).toBe(true);
    expect(readdirSync(dir)).toEqual(['a.img']);
    expect(armed!.length).toBe(PREPARED_RECORD_BYTES);
    expect(armed!.subarray(0, 8).toString('latin1')).toBe('DWUNDO02');
    // That armed record, back beside the old image (a kill before the first write), rolls back to it.
    writeFileSync(file, before);
    writeFileSync(recordPath(file), armed!);
    expect(hasPendingRecord(file)).toBe(true);
    expect(rollBackInterruptedCommit(file)).toBe(true);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('rolls back an undo log in the format the previous version wrote', async () => {
    const dir = await tempDir();
    const file = join(dir, 'old.img');
    const before = makeSparse(file, 3);
    // Built from the documented DWUNDO01 layout, independently of the writer under test: one data
    // entry for 8192+8192 and one zero entry for a block that was a hole; the image got 0xee there
    // and grew by 4096 before the "kill".
    const holeBlock = [...Array(SIZE / 4096).keys()].find((b) => (b * 7 + 3) % 3 === 0)!;
    const data = before.subarray(8192, 16384);
    const entries = [
      { offset: 8192, data },
      { offset: holeBlock * 4096, length: 4096 },
    ];
    const parts: Buffer[] = [];
    const header = Buffer.alloc(24);
    header.write('DWUNDO01', 0, 'latin1');
    header.writeBigUInt64LE(BigInt(SIZE), 8);
    header.writeUInt32LE(entries.length, 16);
    header.writeUInt32LE(crc32(header.subarray(0, 20)), 20);
    parts.push(header);
    for (const e of entries) {
      const h = Buffer.alloc(24);
      h.writeBigUInt64LE(BigInt(e.offset), 0);
      h.writeUInt32LE(e.data ? e.data.length : e.length!, 8);
      h.writeUInt32LE(e.data ? 0 : 1, 12);
      h.writeUInt32LE(e.data ? crc32(e.data) : 0, 16);
      parts.push(h);
      if (e.data) parts.push(Buffer.from(e.data));
    }
    const log = openSync(recordPath(file), 'w');
    writeSync(log, Buffer.concat(parts));
    closeSync(log);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(8192, 0xee), 0, 8192, 8192);
    writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, holeBlock * 4096);
    ftruncateSync(fd, SIZE + 4096);
    closeSync(fd);
    expect(hasPendingRecord(file)).toBe(true);
    expect(rollBackInterruptedCommit(file)).toBe(true);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(statSync(file).size).toBe(SIZE);
    expect(hasPendingRecord(file)).toBe(false);
  });

  it('refuses a damaged record and leaves the image untouched', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = makeSparse(file, 4);
    const fd = openSync(recordPath(file), 'w');
    writeSync(fd, Buffer.from('DWUNDO01garbage-garbage-garbage'));
    closeSync(fd);
    expect(() => rollBackInterruptedCommit(file)).toThrow(/damaged/);
    expect(readFileSync(file).equals(before)).toBe(true);
  });
});
