/**
 * bootDisk against the real QEMU: the hard timeout kills a guest that does not power off, and a
 * QEMU that cannot start is a one-line E_BOOT error, not a hang.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { bootDisk, ensureBootKit, QEMU_BINARY } from '../../src/demo/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

describe('bootDisk', () => {
  it('kills the guest at the hard timeout and reports it as timed out with the console so far', async () => {
    await requireTool(QEMU_BINARY, 'qemu-system-x86');
    const kit = await ensureBootKit();
    const dir = await tempDir('diskwright-qemu-');
    const disk = join(dir, 'empty.img');
    await writeFile(disk, Buffer.alloc(1024 * 1024));
    const started = performance.now();
    // No panic=-1: a kernel without a root would wait forever; only the timeout ends it.
    const result = await bootDisk({ kernel: kit.kernel, initrd: kit.initrd, disk, append: 'console=ttyS0 root=/dev/vdz', log: join(dir, 'console.log'), timeoutMs: 3000 });
    expect(result.timedOut).toBe(true);
    expect(result.console).toMatch(/SeaBIOS/);
    expect(performance.now() - started).toBeLessThan(15_000);
    const left = await execa('pgrep', ['-f', `file=${disk}`], { reject: false });
    expect(left.stdout.trim()).toBe('');
  }, 60_000);

  it('turns a QEMU that refuses to start into an E_BOOT error', async () => {
    await requireTool(QEMU_BINARY, 'qemu-system-x86');
    const dir = await tempDir('diskwright-qemu-');
    const notAKernel = join(dir, 'vmlinuz');
    await writeFile(notAKernel, 'not a kernel');
    await writeFile(join(dir, 'disk.img'), Buffer.alloc(4096));
    await expect(bootDisk({ kernel: notAKernel, disk: join(dir, 'disk.img'), append: 'console=ttyS0', log: join(dir, 'log'), timeoutMs: 30_000 })).rejects.toMatchObject({
      code: 'E_BOOT',
      message: expect.stringMatching(/^qemu-system-x86_64 exited with 1: /),
    });
  }, 60_000);
});
