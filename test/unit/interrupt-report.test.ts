import { describe, expect, it } from 'vitest';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { commitOverlayInterruptibly, Overlay, RawFileDisk, recordPath } from '../../src/disk/index.js';
import { isDiskwrightError, onAbortReport, reportAbort } from '../../src/errors.js';
import { removeTempSoon, withAtomicOutput, withAtomicPath } from '../../src/io/atomic.js';
import { tempDir } from '../helpers/tmp.js';

// Ctrl-C is answered before the clean-up (errors.ts reportAbort): the CLI's line must not wait
// for a rollback or for GiBs of temp file to be freed. Each test records what the clean-up had
// not yet done when the report ran, and that it was all done afterwards.

describe('reportAbort', () => {
  it('runs the registered report once, and only after the signal fired', () => {
    const controller = new AbortController();
    let reports = 0;
    onAbortReport(controller.signal, () => (reports += 1));
    reportAbort(controller.signal);
    expect(reports).toBe(0);
    controller.abort(new Error('SIGINT'));
    reportAbort(controller.signal);
    reportAbort(controller.signal);
    reportAbort(undefined);
    expect(reports).toBe(1);
  });

  it('an interrupted commit reports while the image still holds the new bytes, then rolls them back', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.img');
    const before = Buffer.alloc(1 << 20, 0x11);
    const fd = openSync(file, 'w');
    writeSync(fd, before);
    ftruncateSync(fd, before.length);
    closeSync(fd);
    const disk = RawFileDisk.open(file, { readOnly: false });
    const overlay = new Overlay(disk);
    // 8 separate runs: the commit stops after writing the 4th.
    for (let r = 0; r < 8; r += 1) overlay.write(Buffer.alloc(64 * 1024, 0xa0 + r), r * 128 * 1024);
    const controller = new AbortController();
    let atReport: Buffer | undefined;
    onAbortReport(controller.signal, () => {
      atReport = readFileSync(file);
      expect(existsSync(recordPath(file))).toBe(true);
    });
    let writes = 0;
    const error = await commitOverlayInterruptibly(overlay, {
      signal: controller.signal,
      onStep: (step) => {
        if (step.phase === 'write' && ++writes === 4) controller.abort(new Error('SIGINT'));
      },
    }).catch((caught: unknown) => caught);
    disk.close();
    expect(isDiskwrightError(error, 'E_ABORTED'), String(error)).toBe(true);
    // Reported before the rollback: the runs written were still the new ones.
    expect(atReport, 'the report never ran').toBeDefined();
    expect(atReport!.subarray(0, 64 * 1024)).toEqual(Buffer.alloc(64 * 1024, 0xa0));
    // And then rolled back all the same.
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['a.img']);
  });

  it('an interrupted atomic output reports while its temp file is still there, then removes it', async () => {
    const dir = await tempDir();
    for (const kind of ['handle', 'path'] as const) {
      const target = join(dir, `out-${kind}`);
      const controller = new AbortController();
      let atReport: string[] | undefined;
      onAbortReport(controller.signal, () => (atReport = readdirSync(dir)));
      const work = async (write: () => Promise<void>): Promise<void> => {
        await write();
        controller.abort(new Error('SIGINT'));
      };
      const run =
        kind === 'handle'
          ? withAtomicOutput(target, (handle) => work(async () => void (await handle.write(Buffer.alloc(4096, 1)))), { signal: controller.signal })
          : withAtomicPath(target, (temp) => work(async () => void closeSync(openSync(temp, 'wx'))), { signal: controller.signal });
      await expect(run).rejects.toSatisfy((e) => isDiskwrightError(e, 'E_ABORTED'));
      expect(atReport, 'the report never ran').toHaveLength(1);
      expect(atReport![0]).toMatch(new RegExp(`^\\.out-${kind}\\.diskwright-[0-9a-f]+\\.tmp$`));
      expect(readdirSync(dir)).toEqual([]);
    }
  });
  it('removeTempSoon takes the name at once and frees the data when its descriptor closes', async () => {
    const dir = await tempDir();
    const path = join(dir, '.a.img.diskwright-0123456789ab.tmp');
    writeFileSync(path, Buffer.alloc(1 << 20, 7));
    const held = openSync(path, 'r');
    removeTempSoon(path);
    // Gone from the directory before any turn of the event loop.
    expect(readdirSync(dir)).toEqual([]);
    expect(fstatSync(held).nlink).toBe(0);
    closeSync(held);
    // A directory is refused as rmSync refuses it, and no descriptor is left open.
    mkdirSync(join(dir, 'd'));
    expect(() => removeTempSoon(join(dir, 'd'))).toThrow();
    expect(readdirSync(dir)).toEqual(['d']);
  });
});
