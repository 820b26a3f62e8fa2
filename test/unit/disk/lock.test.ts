import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, renameSync, symlinkSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { findHolders, lockImage, withImage } from '../../../src/disk/index.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { holdLock } from '../../helpers/lock-holder.js';
import { requireTool } from '../../helpers/oracle.js';
import { tempDir } from '../../helpers/tmp.js';

async function image(name = 'a.img'): Promise<string> {
  const dir = await tempDir();
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(8192));
  return path;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting for the condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('image locks between processes', () => {
  it('a second writer fails at once naming the pid of the process changing the image', async () => {
    const path = await image();
    const holder = await holdLock(path, 'write');
    try {
      const error = await failure(lockImage(path, { access: 'write' }));
      expect(isDiskwrightError(error, 'E_LOCKED')).toBe(true);
      expect((error as Error).message).toBe(`${path} is being changed by another diskwright process (pid ${holder.pid})`);
      const reader = await failure(lockImage(path, { access: 'read' }));
      expect((reader as Error).message).toMatch(/is being changed by another diskwright process/);
    } finally {
      await holder.release();
    }
  });

  it('readers share the image; a writer waits for them', async () => {
    const path = await image();
    const holder = await holdLock(path, 'read');
    try {
      const mine = await lockImage(path, { access: 'read' });
      mine.release();
      const error = await failure(lockImage(path, { access: 'write' }));
      expect((error as Error).message).toBe(`${path} is being read by another diskwright process (pid ${holder.pid})`);
    } finally {
      await holder.release();
    }
    (await lockImage(path, { access: 'write' })).release();
  });

  it('a lock held by another program is named by its /proc name and its access mode, never as diskwright’s', async () => {
    await requireTool('qemu-io', 'qemu-utils');
    const path = await image();
    const qcow2 = `${path}.qcow2`;
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '16M']);
    for (const [args, mode] of [[[], 'writing'], [['-r'], 'reading']] as const) {
      // QEMU takes shared OFD locks on single bytes from 100 on, whether it writes or not.
      const qemu = execa('qemu-io', [...args, '-f', 'qcow2', qcow2], { stdin: 'pipe', reject: false });
      try {
        await until(() => findHolders(qcow2).some((h) => h.pid === qemu.pid && h.lock !== undefined));
        const error = await failure(lockImage(qcow2, { access: 'write' }));
        expect(isDiskwrightError(error, 'E_LOCKED')).toBe(true);
        expect((error as Error).message).toBe(`${qcow2} is locked by another process (pid ${qemu.pid}, qemu-io), which has it open for ${mode}`);
      } finally {
        qemu.stdin!.end('quit\n');
        await qemu;
      }
    }
  });

  it('a library user’s process holding the lock is "another process", not a diskwright one', async () => {
    const path = await image();
    const holder = await holdLock(path, 'read', null);
    try {
      const error = await failure(lockImage(path, { access: 'write' }));
      expect((error as Error).message).toBe(`${path} is locked by another process (pid ${holder.pid}, node), which has it open for reading`);
    } finally {
      await holder.release();
    }
  });

  it('--wait queues behind the holder and gets the lock when it ends', async () => {
    const path = await image();
    const holder = await holdLock(path, 'write');
    const waiting = lockImage(path, { access: 'write', wait: true });
    let got = false;
    void waiting.then(() => (got = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toBe(false);
    await holder.release();
    (await waiting).release();
  });

  it('the lock of a process killed with SIGKILL is gone with it (never stale)', async () => {
    const path = await image();
    const holder = await holdLock(path, 'write');
    holder.child.kill('SIGKILL');
    await holder.child;
    (await lockImage(path, { access: 'write' })).release();
  });

  it('a wait can be cancelled', async () => {
    const path = await image();
    const holder = await holdLock(path, 'write');
    try {
      const controller = new AbortController();
      const waiting = failure(lockImage(path, { access: 'write', wait: true, signal: controller.signal }));
      setTimeout(() => controller.abort(), 100);
      expect(isDiskwrightError(await waiting, 'E_ABORTED')).toBe(true);
    } finally {
      await holder.release();
    }
  });

  it('locks the real path (a symlink and its target are one image) and is re-entrant in a process', async () => {
    const path = await image();
    const link = `${path}.link`;
    symlinkSync(path, link);
    const holder = await holdLock(link, 'write');
    try {
      expect(isDiskwrightError(await failure(lockImage(path, { access: 'write' })), 'E_LOCKED')).toBe(true);
    } finally {
      await holder.release();
    }
    const outer = await lockImage(path, { access: 'write' });
    const inner = await lockImage(link, { access: 'read' });
    expect(inner.outermost).toBe(false);
    inner.release();
    outer.release();
  });

  it('follows the path when the image is replaced by rename while waiting', async () => {
    const path = await image();
    const holder = await holdLock(path, 'write');
    const waiting = lockImage(path, { access: 'write', wait: true });
    const replacement = `${path}.new`;
    writeFileSync(replacement, Buffer.alloc(8192, 1));
    renameSync(replacement, path);
    // Nobody holds the new file: the waiter gets it while the old (unlinked) one stays locked.
    const lock = await waiting;
    expect(lock.path).toBe(path);
    lock.release();
    await holder.release();
  });
});

describe('withImage', () => {
  it('a writer removes leftover temp files of a killed run, sparing one a live process has open', async () => {
    const path = await image('disk.img');
    const dir = join(path, '..');
    const stale = join(dir, '.disk.img.diskwright-0123456789ab.tmp');
    const live = join(dir, '.disk.img.diskwright-ba9876543210.tmp');
    const unrelated = join(dir, '.other.img.diskwright-0123456789ab.tmp');
    for (const f of [stale, live, unrelated]) writeFileSync(f, 'x');
    const holder = await holdLock(live, 'read');
    try {
      await withImage(path, { access: 'read' }, async () => undefined);
      expect(readdirSync(dir).sort()).toContain('.disk.img.diskwright-0123456789ab.tmp');
      await withImage(path, { access: 'write' }, async () => undefined);
      expect(readdirSync(dir).sort()).toEqual(['.disk.img.diskwright-ba9876543210.tmp', '.other.img.diskwright-0123456789ab.tmp', 'disk.img'].sort());
    } finally {
      await holder.release();
    }
  });

  it('readers refuse a pending record with a hint to run diskwright recover; writers roll it back', async () => {
    const path = await image();
    // A record with a header no diskwright writes: readers refuse, the writer refuses it as damaged instead of guessing.
    writeFileSync(`${path}.diskwright-undo`, 'not a diskwright record');
    const error = await failure(withImage(path, { access: 'read' }, async () => undefined));
    expect(isDiskwrightError(error, 'E_NEEDS_RECOVERY')).toBe(true);
    expect((error as { hint: string }).hint).toContain(`diskwright recover ${path}`);
    const damaged = await failure(withImage(path, { access: 'write' }, async () => undefined));
    expect((damaged as Error).message).toMatch(/damaged/);
  });

  it('a record that was never armed (empty, or zeros: prepared for a commit, or killed before its header reached the disk) is not pending: readers read, a writer drops it', async () => {
    const path = await image();
    for (const content of [Buffer.alloc(0), Buffer.alloc(64 * 1024)]) {
      writeFileSync(`${path}.diskwright-undo`, content);
      expect(await withImage(path, { access: 'read' }, async () => 'read')).toBe('read');
      expect(existsSync(`${path}.diskwright-undo`)).toBe(true);
      expect(await withImage(path, { access: 'write' }, async ({ rolledBack }) => rolledBack)).toBe(false);
      expect(existsSync(`${path}.diskwright-undo`)).toBe(false);
    }
  });
});
