import { execa } from 'execa';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { commitOverlay, openImage, Overlay, recordPath, rollBackInterruptedCommit, type CommitStep, type Disk } from '../../src/disk/index.js';
import { requireTool } from '../helpers/oracle.js';
import { qemuRaw, readAll, writeMixedRaw } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The one commit mechanism (src/disk/commit.ts) with a qcow2 as its target: the record holds the
 * guest-visible bytes, a failure at any step rolls back in-process, a kill at any step rolls back
 * on the next write — and qemu-img sees the old image, consistent, every time.
 */

const SIZE = 4 * 1024 * 1024;
const GROW = 1024 * 1024 + 512;
let dir: string;
let oldRaw: string;

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir('qcow2-commit-');
  oldRaw = join(dir, 'old.raw');
  writeMixedRaw(oldRaw, SIZE);
});

/** Writes, a zero run over data and over a hole, partial clusters and a grown tail. */
function stage(overlay: Overlay): void {
  overlay.resize(SIZE + GROW);
  overlay.write(Buffer.alloc(70_000, 0x5a), 10_000);
  overlay.discard(0, 4096 * 3);
  overlay.discard(600_000, 300_000);
  overlay.write(Buffer.alloc(200_000, 0xa5), 1_050_000);
  overlay.write(Buffer.alloc(9_000, 0x33), SIZE + 100_000);
  overlay.write(Buffer.alloc(4096, 0x11), SIZE - 2048);
}

async function expectClean(image: string): Promise<void> {
  const check = await execa('qemu-img', ['check', image], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
}

async function qemuSame(image: string, raw: string): Promise<void> {
  const compare = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', image, raw], { reject: false });
  expect(compare.exitCode, compare.stdout + compare.stderr).toBe(0);
}

describe('a commit into a qcow2', () => {
  for (const [name, extra] of [['plain', []], ['compressed', ['-c']], ['compat 0.10', ['-o', 'compat=0.10']]] as const) {
    it(`writes the new guest bytes and leaves a clean image (${name})`, async () => {
      const image = join(dir, `ok-${name}.qcow2`);
      await execa('qemu-img', ['convert', ...extra, '-O', 'qcow2', oldRaw, image]);
      const disk = openImage(image, { readOnly: false });
      const overlay = new Overlay(disk);
      stage(overlay);
      const expected = readAll(overlay);
      commitOverlay(overlay);
      overlay.close();
      disk.close();
      expect(existsSync(recordPath(image))).toBe(false);
      await expectClean(image);
      expect(Buffer.compare(await qemuRaw(image, join(dir, `ok-${name}.raw`)), expected)).toBe(0);
    });
  }

  it('a failure at any step rolls back to the old guest bytes and virtual size, qemu-img check clean', async () => {
    const template = join(dir, 'fail.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', oldRaw, template]);
    let steps = 0;
    {
      const probe = join(dir, 'count.qcow2');
      copyFileSync(template, probe);
      const disk = openImage(probe, { readOnly: false });
      const overlay = new Overlay(disk);
      stage(overlay);
      commitOverlay(overlay, { onStep: () => void (steps += 1) });
      disk.close();
    }
    expect(steps).toBeGreaterThan(4);
    for (let at = 1; at <= steps; at += 1) {
      const image = join(dir, `fail-${at}.qcow2`);
      copyFileSync(template, image);
      const disk = openImage(image, { readOnly: false });
      const overlay = new Overlay(disk);
      stage(overlay);
      let seen = 0;
      const fail = (_: CommitStep): void => {
        seen += 1;
        if (seen === at) throw Object.assign(new Error('ENOSPC: no space left on device (injected)'), { code: 'ENOSPC' });
      };
      expect(() => commitOverlay(overlay, { onStep: fail }), `step ${at}`).toThrow(/ENOSPC/);
      disk.close();
      expect(existsSync(recordPath(image))).toBe(false);
      await expectClean(image);
      await qemuSame(image, oldRaw);
    }
  });

  it('a kill at any step is rolled back by the next writer: the old guest bytes, qemu-img check clean', async () => {
    const template = join(dir, 'kill.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', oldRaw, template]);
    const image = join(dir, 'kill-live.qcow2');
    copyFileSync(template, image);
    // What a kill -9 at each step leaves: the file and the record as they are at that moment.
    const snapshots: string[] = [];
    const disk: Disk = openImage(image, { readOnly: false });
    const overlay = new Overlay(disk);
    stage(overlay);
    commitOverlay(overlay, {
      onStep: () => {
        const snap = join(dir, `snap-${snapshots.length}.qcow2`);
        copyFileSync(image, snap);
        if (existsSync(recordPath(image))) copyFileSync(recordPath(image), recordPath(snap));
        snapshots.push(snap);
      },
    });
    disk.close();
    expect(snapshots.length).toBeGreaterThan(4);
    for (const snap of snapshots) {
      rollBackInterruptedCommit(snap);
      expect(existsSync(recordPath(snap))).toBe(false);
      await expectClean(snap);
      await qemuSame(snap, oldRaw);
    }
  });

  it('the record of a qcow2 is never rolled back as raw file offsets', async () => {
    const image = join(dir, 'magic.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', oldRaw, image]);
    const disk = openImage(image, { readOnly: false });
    const overlay = new Overlay(disk);
    overlay.write(Buffer.alloc(4096, 0x77), 0);
    let record: Buffer | undefined;
    commitOverlay(overlay, { onStep: (s) => void (s.phase === 'record-durable' && (record = readFileSync(recordPath(image)))) });
    disk.close();
    expect(record!.subarray(0, 8).toString('latin1')).toBe('DWUNDOQ1');
    // Put it back as if the commit had been killed: the rollback goes through the qcow2 driver.
    writeFileSync(recordPath(image), record!);
    expect(rollBackInterruptedCommit(image)).toBe(true);
    await expectClean(image);
    await qemuSame(image, oldRaw);
  });
});
