import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { commitOverlay, openImage, Overlay, recordPath } from '../../src/disk/index.js';
import { leftovers, runCli } from '../helpers/crash.js';
import { hostErrno } from '../helpers/faulty-disk.js';
import { requireTool } from '../helpers/oracle.js';
import { writeMixedRaw } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV } from '../unit/ext/ext-images.js';

/**
 * A disk full *inside* the qcow2 driver's own host writes during a commit (src/disk/commit.ts with
 * the undo point of src/disk/qcow2/image.ts): the rollback returns the file's metadata and length
 * to where the commit started, so qemu-img check finds no leaked cluster and the host gets its
 * space back.
 */

/** The driver's host writes: the N-th one after `fault.armed` writes half its bytes, then fails with ENOSPC. */
const fault = vi.hoisted(() => ({ armed: false, writes: 0, failAt: 0 }));
vi.mock('../../src/disk/qcow2/raw-file.js', async (original) => {
  const actual = await original<typeof import('../../src/disk/qcow2/raw-file.js')>();
  return {
    ...actual,
    writeFully: (fd: number, buffer: Uint8Array, position: number, path: string): void => {
      if (fault.armed && ++fault.writes === fault.failAt) {
        actual.writeFully(fd, buffer.subarray(0, Math.ceil(buffer.length / 2)), position, path);
        throw hostErrno('ENOSPC');
      }
      actual.writeFully(fd, buffer, position, path);
    },
  };
});

const SIZE = 4 * 1024 * 1024;
let dir: string;
let oldRaw: string;

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir('qcow2-enospc-');
  oldRaw = join(dir, 'old.raw');
  writeMixedRaw(oldRaw, SIZE);
});

async function qemuCheck(image: string): Promise<void> {
  const check = await execa('qemu-img', ['check', image], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
}

async function qemuSame(image: string, other: string, otherFormat: 'raw' | 'qcow2'): Promise<void> {
  const compare = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', otherFormat, image, other], { reject: false });
  expect(compare.exitCode, compare.stdout + compare.stderr).toBe(0);
}

/** A commit that appends clusters (new data, an L2 table, a grown L1), writes in place and frees. */
function commitChanges(image: string): void {
  const disk = openImage(image, { readOnly: false });
  try {
    const overlay = new Overlay(disk);
    overlay.resize(SIZE + 600 * 1024 * 1024);
    overlay.write(Buffer.alloc(70_000, 0x5a), 10_000);
    overlay.discard(1_048_576, 131_072);
    overlay.write(randomBytes(200_000), 1_900_000);
    overlay.write(Buffer.alloc(9_000, 0x33), SIZE + 590 * 1024 * 1024);
    fault.writes = 0;
    fault.armed = true;
    try {
      commitOverlay(overlay);
    } finally {
      fault.armed = false;
    }
  } finally {
    disk.close();
  }
}

describe('a disk full inside a commit into a qcow2', () => {
  it('an ENOSPC at any host write of the commit leaves the old file: qemu-img check clean, the old guest bytes, no byte longer', async () => {
    const template = join(dir, 'template.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', oldRaw, template]);
    const probe = join(dir, 'probe.qcow2');
    copyFileSync(template, probe);
    fault.failAt = 0;
    commitChanges(probe);
    const writes = fault.writes;
    // Data runs, new L2 and refcount metadata, the L1 table and header, the frees.
    expect(writes).toBeGreaterThan(6);
    for (let at = 1; at <= writes; at += 1) {
      const image = join(dir, `fail-${at}.qcow2`);
      copyFileSync(template, image);
      fault.failAt = at;
      expect(() => commitChanges(image), `host write ${at}`).toThrow(/ENOSPC.*nothing was changed/);
      expect(existsSync(recordPath(image))).toBe(false);
      await qemuCheck(image);
      await qemuSame(image, oldRaw, 'raw');
      expect(statSync(image).size, `host write ${at}`).toBe(statSync(template).size);
    }
  });

  // A real disk full: root mounts a small tmpfs (CI runs as root), as test/oracle/disk-crash.test.ts does.
  it.runIf(process.getuid?.() === 0)('a real ENOSPC on a full tmpfs during `fs put` into a qcow2 is rolled back without leaked clusters, and the file shrinks back', async () => {
    const raw = join(dir, 'small.raw');
    const tree = join(dir, 'tree');
    mkdirSync(tree);
    for (let i = 0; i < 4; i += 1) writeFileSync(join(tree, `f${i}`), randomBytes(1_200_000));
    await execa('truncate', ['-s', '32M', raw]);
    await execa('sfdisk', ['--quiet', raw], { input: 'label: dos\nstart=2048, type=83\n', env: SBIN_ENV });
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-E', 'offset=1048576', raw, '30M'], { env: SBIN_ENV });
    const before = join(dir, 'before.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', raw, before]);
    const big = join(dir, 'r9.bin');
    writeFileSync(big, randomBytes(9 * 1024 * 1024));
    const mount = join(dir, 'tmpfs');
    mkdirSync(mount);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', mount]);
    try {
      const work = join(mount, 'full.qcow2');
      copyFileSync(before, work);
      const run = await runCli(['fs', 'put', work, '--partition', '1', big, '/r9.bin']);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/ENOSPC.*nothing was changed \(the commit was rolled back\)/);
      expect(leftovers(work)).toEqual([]);
      await qemuCheck(work);
      await qemuSame(work, before, 'qcow2');
      expect(statSync(work).size).toBe(statSync(before).size);
    } finally {
      await execa('umount', [mount]);
    }
  });
});
