/**
 * The README demo (`diskwright demo`) run as a user would: the built binary, a fresh directory.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBin, runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

interface DemoJson {
  dir: string;
  partitions: { partitiontable: { label: string; partitions: { start: number; type: string; bootable?: boolean }[] } };
  manifest: { kernel?: { version: string }; operations: { name: string; status: string }[] };
  instanceDisk: string;
  files: { path: string; content: string }[];
  kernelArgs: string[];
  virtInstall: string[];
  boot: { status: string; reason?: string; lines?: string[]; seconds?: number };
}

describe('diskwright demo', () => {
  it('runs the whole job and boots the instance, which shows the rendered hostname and address', async () => {
    await requireTool('qemu-system-x86_64', 'qemu-system-x86');
    const dir = join(await tempDir('diskwright-demo-test-'), 'demo');
    const result = await runBin(['demo', '--dir', dir, '--json'], { timeout: 170_000 });
    expect(result.code, result.stderr).toBe(0);
    const demo = JSON.parse(result.stdout) as DemoJson;
    expect(demo.dir).toBe(dir);
    expect(demo.partitions.partitiontable.label).toBe('dos');
    expect(demo.partitions.partitiontable.partitions.map((p) => [p.start, p.type, p.bootable === true])).toEqual([
      [2048, '83', true],
      [133120, '5', false],
      [135168, '82', false],
    ]);
    expect(demo.manifest.kernel?.version).toMatch(/-amd64$/);
    expect(demo.manifest.operations.find((op) => op.name === 'hostname')?.status).toBe('applied');
    const files = Object.fromEntries(demo.files.map((f) => [f.path, f.content]));
    expect(files['/etc/hostname']).toBe('web01.linux.bogus\n');
    expect(files['/etc/network/interfaces']).toMatch(/address 10\.0\.2\.15/);
    expect(files['/etc/resolv.conf']).toMatch(/nameserver 10\.0\.2\.3/);
    expect(demo.virtInstall).toEqual(expect.arrayContaining(['--name', 'web01', '--import', '--noreboot']));
    expect(demo.boot.status, demo.boot.reason).toBe('booted');
    expect(demo.boot.lines).toEqual(expect.arrayContaining(['DISKWRIGHT-HOSTNAME: web01.linux.bogus', 'DISKWRIGHT-IP:     inet 10.0.2.15/24 scope global eth0']));
    process.stderr.write(`demo: boot ${demo.boot.seconds?.toFixed(1)} s\n`);
  }, 180_000);

  it('still does every disk step, and says why it skips the boot, when the kernel cannot be fetched', async () => {
    const dir = join(await tempDir('diskwright-demo-test-'), 'demo');
    const result = await runBin(['demo', '--dir', dir], { env: { ...process.env, DISKWRIGHT_KERNEL_DEB: join(dir, '..', 'missing.deb') }, timeout: 120_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/note: no kernel: kernel package .*missing\.deb does not exist/);
    expect(result.stdout).toMatch(/\[6\/9\] Create an instance disk/);
    expect(result.stdout).toMatch(/\/etc\/hostname:\n\s+web01\.linux\.bogus/);
    expect(result.stdout).toMatch(/virt-install --name web01 /);
    expect(result.stdout).toMatch(/note: boot skipped: the kernel could not be fetched/);
    expect(result.stdout).toMatch(/Done: boot skipped/);
  }, 130_000);

  it('without a static busybox does every disk step, downloads no kernel, exits 0 and says what to install', async () => {
    const dir = join(await tempDir('diskwright-demo-test-'), 'demo');
    // A dynamically linked program stands in for Debian's plain `busybox` package.
    const env = { ...process.env, DISKWRIGHT_BUSYBOX: process.execPath, DISKWRIGHT_KERNEL_DEB: join(dir, '..', 'never-read.deb') };
    const result = await runBin(['demo', '--dir', dir], { env, timeout: 120_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/note: .* is not a static 64-bit busybox; install busybox-static for the boot \(sudo apt-get install busybox-static\)/);
    expect(result.stdout).not.toMatch(/never-read\.deb/);
    expect(result.stdout).toMatch(/\/etc\/hostname:\n\s+web01\.linux\.bogus/);
    expect(result.stdout).toMatch(/note: boot skipped: .*install busybox-static/);
    expect(result.stdout).toMatch(/Done: boot skipped/);
  }, 130_000);

  it('refuses a --dir that is not empty with a one-line error', async () => {
    const dir = await tempDir('diskwright-demo-test-');
    await mkdir(join(dir, 'used'));
    await writeFile(join(dir, 'used', 'file'), 'x');
    const result = await runBin(['demo', '--dir', join(dir, 'used'), '--no-boot']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^diskwright: demo directory .*used is not empty \[E_EXISTS\]\n  hint: pass --dir/);
  });
});

describe('diskwright demo --help', () => {
  it('prints the usage line, the options and an example', async () => {
    const result = await runInProcess(['demo', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: diskwright demo \[--dir DIR\] \[--no-boot\] \[--json\]/);
    expect(result.stdout).toMatch(/--no-boot/);
    expect(result.stdout).toMatch(/Example:\n  diskwright demo --dir/);
  });
});
