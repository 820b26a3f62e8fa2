import { describe, expect, it } from 'vitest';
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { commitOverlay, commitOverlayInterruptibly, Overlay, RawFileDisk, recordPath, type CommitStep } from '../../../src/disk/index.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

// Runs of at most 4 MiB: 16 separate changed runs (a gap between each) give the commit 16 places to stop.
const RUNS = 16;
const RUN = 64 * 1024;
const SIZE = RUNS * 2 * RUN;

/** An image whose every other 64 KiB run holds data (the rest are holes), and its bytes. */
function makeImage(file: string): Buffer {
  const model = Buffer.alloc(SIZE);
  const fd = openSync(file, 'w');
  for (let r = 0; r < RUNS; r += 1) {
    const data = Buffer.alloc(RUN, r + 1);
    writeSync(fd, data, 0, RUN, r * 2 * RUN);
    data.copy(model, r * 2 * RUN);
  }
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  return model;
}

/** Stages new bytes over every data run and into every hole, plus a grown tail: 2 × RUNS runs. */
function stageEverything(overlay: Overlay): void {
  overlay.resize(SIZE + RUN);
  for (let r = 0; r < 2 * RUNS; r += 2) overlay.write(Buffer.alloc(RUN, 0xa0 + r), r * RUN);
  overlay.write(Buffer.alloc(RUN, 0xee), SIZE);
}

/** Blocks the calling thread (a slow disk) without giving the event loop a turn. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function setUp(): Promise<{ dir: string; file: string; before: Buffer; disk: RawFileDisk; overlay: Overlay }> {
  const dir = await tempDir();
  const file = join(dir, 'a.img');
  const before = makeImage(file);
  const disk = RawFileDisk.open(file, { readOnly: false });
  const overlay = new Overlay(disk);
  stageEverything(overlay);
  return { dir, file, before, disk, overlay };
}

function expectOld(dir: string, file: string, before: Buffer): void {
  expect(readFileSync(file).equals(before)).toBe(true);
  expect(existsSync(recordPath(file))).toBe(false);
  expect(readdirSync(dir)).toEqual(['a.img']);
}

describe('commitOverlayInterruptibly', () => {
  it('answers a signal that fires during the commit (a timer gets its turn) and leaves the old image', async () => {
    const { dir, file, before, disk, overlay } = await setUp();
    const controller = new AbortController();
    // Each run takes 30 ms: a synchronous commit would finish all of them before the timer could fire.
    const steps: string[] = [];
    const error = await commitOverlayInterruptibly(overlay, {
      signal: controller.signal,
      onStep: (step) => {
        steps.push(step.phase);
        // Armed once the record is durable: its fsyncs take longer than 100 ms on a loaded machine.
        if (step.phase === 'record-durable') setTimeout(() => controller.abort(new Error('SIGINT')), 100);
        if (step.phase === 'write') blockFor(30);
      },
    }).catch((caught: unknown) => caught);
    expect(isDiskwrightError(error, 'E_ABORTED'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/rolled back/);
    // It stopped while writing the image (the rollback path), long before the last run.
    expect(steps).toContain('write');
    expect(steps.filter((s) => s === 'write').length).toBeLessThan(2 * RUNS);
    expect(steps).not.toContain('written');
    disk.close();
    expectOld(dir, file, before);
  });

  it('stops while it saves the old bytes: no record, nothing written', async () => {
    const { dir, file, before, disk, overlay } = await setUp();
    const controller = new AbortController();
    const steps: CommitStep['phase'][] = [];
    const error = await commitOverlayInterruptibly(overlay, {
      signal: controller.signal,
      onStep: (step) => {
        steps.push(step.phase);
        if (step.phase === 'record' && steps.length === 3) controller.abort(new Error('SIGINT'));
      },
    }).catch((caught: unknown) => caught);
    expect(isDiskwrightError(error, 'E_ABORTED'), String(error)).toBe(true);
    expect(steps).not.toContain('record-written');
    expect(steps).not.toContain('write');
    disk.close();
    expectOld(dir, file, before);
  });

  it('stops between the runs it writes and rolls back the grown tail and the runs written', async () => {
    const { dir, file, before, disk, overlay } = await setUp();
    const controller = new AbortController();
    let writes = 0;
    const error = await commitOverlayInterruptibly(overlay, {
      signal: controller.signal,
      onStep: (step) => {
        if (step.phase === 'write' && ++writes === RUNS) controller.abort(new Error('SIGINT'));
      },
    }).catch((caught: unknown) => caught);
    expect(isDiskwrightError(error, 'E_ABORTED'), String(error)).toBe(true);
    expect(writes).toBe(RUNS);
    disk.close();
    expectOld(dir, file, before);
  });

  it('commits everything when not interrupted, like commitOverlay', async () => {
    const a = await setUp();
    const b = await setUp();
    const summary = await commitOverlayInterruptibly(a.overlay, { signal: new AbortController().signal });
    expect(summary).toEqual(commitOverlay(b.overlay));
    a.disk.close();
    b.disk.close();
    expect(readFileSync(a.file).equals(readFileSync(b.file))).toBe(true);
    expect(readFileSync(a.file).subarray(SIZE)).toEqual(Buffer.alloc(RUN, 0xee));
    expect(existsSync(recordPath(a.file))).toBe(false);
  });
});
