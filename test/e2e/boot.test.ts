/**
 * Proof by boot: a disk built from the demo root tree becomes a template and an instance, and the
 * instance boots under QEMU (TCG, no root) showing the identity diskwright rendered into it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOOT_EXTRA_KERNEL_ARGS, bootDisk, buildDemoRoot, ensureBootKit, parseGuestConsole, verifyGuestIdentity, type BootKit } from '../../src/demo/index.js';
import { seedLayout } from '../../src/demo/seed.js';
import { runBin } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT_BYTES = 64 * 1024 * 1024;
const INSTANCE = { ip: '10.0.2.15', host: 'web01', domain: 'example.test', gateway: '10.0.2.2', netmask: '255.255.255.0', nameserver: '10.0.2.3', prefix: 24 };
const BOOT_TIMEOUT_MS = 90_000;

describe('an instance built by diskwright boots under QEMU', () => {
  let dir: string;
  let kit: BootKit;
  let template: string;
  let instanceDisk: string;
  let imagesDir: string;
  let kernelArgs: string[];
  /** The kernel and initrd diskwright recorded in the template (copied out of its /boot). */
  let bootFiles: { kernel: string; initrd: string | undefined };
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    await requireTool('qemu-system-x86_64', 'qemu-system-x86');
    await requireTool('busybox', 'busybox-static');
    const started = performance.now();
    dir = await tempDir('diskwright-e2e-');
    kit = await ensureBootKit();
    timings.kit = performance.now() - started;

    // 1. the demo root tree (busybox + /sbin/init + Debian-like /etc + /boot with kernel and initrd)
    const root = join(dir, 'root');
    await buildDemoRoot(root, { boot: kit });

    // 2. a seed-like disk like the article's, in one command: diskwright disk build writes the
    //    sfdisk layout (p1 type 83 bootable at sector 2048, an extended partition with a logical
    //    swap), an ext3 filesystem filled from the tree into p1 and the swap signature into p5
    const seed = seedLayout(ROOT_BYTES);
    const disk = join(dir, 'seed.img');
    const layout = join(dir, 'seed.sfdisk');
    await writeFile(layout, seed.script);
    const built = await runBin(['disk', 'build', disk, '--size', `${seed.diskBytes / 512}s`, '--layout', layout, '--fs', `1=ext3,label=demo-root:${root}`, '--fs', '5=swap']);
    expect(built.code, built.stderr).toBe(0);
    const listed = await runBin(['partitions', disk, '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { partitiontable: { partitions: { type: string }[] } }).partitiontable.partitions.map((p) => p.type)).toEqual(['83', '5', '82']);

    // 4. template: diskwright template make (extract p1, sysprep operations, record the kernel)
    template = join(dir, 'debian-tmpl');
    const made = await runBin(['template', 'make', disk, '--partition', '1', '-o', template, '--kernel-dir', join(dir, 'kernels'), '--json']);
    expect(made.code, made.stderr).toBe(0);
    const manifest = JSON.parse(made.stdout) as { kernel?: { version: string; kernel: string; initrd?: string }; files: { path: string; placeholders: string[] }[] };
    expect(manifest.kernel?.version).toBe(kit.version);
    expect(manifest.files.map((f) => f.path)).toEqual(expect.arrayContaining(['/etc/hostname', '/etc/network/interfaces']));

    // 5. instance: diskwright instance create --disk-only (copy, grow, fsck, resize2fs, render, fsck)
    imagesDir = join(dir, 'images');
    await mkdir(imagesDir);
    const created = await runBin([
      'instance', 'create', INSTANCE.ip, INSTANCE.host,
      '--template', template, '--domain', INSTANCE.domain, '--gateway', INSTANCE.gateway, '--netmask', INSTANCE.netmask,
      '--nameserver', INSTANCE.nameserver, '--disk', '128M', '--images-dir', imagesDir, '--disk-only', '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const plan = JSON.parse(created.stdout) as { outcome: string; disk: string; kernel: string; initrd: string | null; kernelArgs: string[] };
    expect(plan.outcome).toBe('disk');
    instanceDisk = plan.disk;
    bootFiles = { kernel: plan.kernel, initrd: plan.initrd ?? undefined };
    kernelArgs = plan.kernelArgs;
    timings.build = performance.now() - started - timings.kit;
  }, 240_000);

  it('boots the instance disk and shows its hostname and eth0 address on the serial console', async () => {
    const result = await bootDisk({
      kernel: bootFiles.kernel,
      ...(bootFiles.initrd ? { initrd: bootFiles.initrd } : {}),
      disk: instanceDisk,
      append: [...kernelArgs, ...BOOT_EXTRA_KERNEL_ARGS].join(' '),
      log: join(dir, 'instance-console.log'),
      timeoutMs: BOOT_TIMEOUT_MS,
    });
    process.stderr.write(`e2e: kit ${(timings.kit! / 1000).toFixed(1)} s, build ${(timings.build! / 1000).toFixed(1)} s, boot ${result.seconds.toFixed(1)} s\n`);
    expect(result.timedOut, result.console.slice(-2000)).toBe(false);
    const report = parseGuestConsole(result.console);
    verifyGuestIdentity(report, { hostnames: [INSTANCE.host, `${INSTANCE.host}.${INSTANCE.domain}`], address: INSTANCE.ip, prefix: INSTANCE.prefix });
    expect(report.interfacesAddress).toBe(INSTANCE.ip);
    expect(report.nameserver).toBe(INSTANCE.nameserver);
  }, 150_000);

  it('fails the identity check when the booted disk was not rendered (the template itself)', async () => {
    const result = await bootDisk({
      kernel: bootFiles.kernel,
      ...(bootFiles.initrd ? { initrd: bootFiles.initrd } : {}),
      disk: template,
      append: [...kernelArgs, ...BOOT_EXTRA_KERNEL_ARGS].join(' '),
      log: join(dir, 'template-console.log'),
      timeoutMs: BOOT_TIMEOUT_MS,
    });
    expect(result.timedOut).toBe(false);
    const report = parseGuestConsole(result.console);
    expect(report.booted).toBe(true);
    expect(report.hostname).toBe('HOSTNAME-TMPL');
    expect(() => verifyGuestIdentity(report, { hostnames: [INSTANCE.host, `${INSTANCE.host}.${INSTANCE.domain}`], address: INSTANCE.ip, prefix: INSTANCE.prefix })).toThrow(
      /hostname is `HOSTNAME-TMPL`.*eth0 has no IPv4 address/,
    );
  }, 150_000);

  /** Boots the thin qcow2 instance `instance create --json` printed and checks its identity in the guest. */
  async function bootThin(createdJson: string, thin: { host: string; ip: string }, diskName: string, log: string): Promise<{ seconds: number }> {
    const plan = JSON.parse(createdJson) as { disk: string; format: string; kernelArgs: string[] };
    expect(plan).toMatchObject({ format: 'qcow2', disk: join(imagesDir, diskName) });
    const result = await bootDisk({
      kernel: bootFiles.kernel,
      ...(bootFiles.initrd ? { initrd: bootFiles.initrd } : {}),
      disk: plan.disk,
      format: 'qcow2',
      append: [...plan.kernelArgs, ...BOOT_EXTRA_KERNEL_ARGS].join(' '),
      log: join(dir, log),
      timeoutMs: BOOT_TIMEOUT_MS,
    });
    expect(result.timedOut, result.console.slice(-2000)).toBe(false);
    const report = parseGuestConsole(result.console);
    verifyGuestIdentity(report, { hostnames: [thin.host, `${thin.host}.${INSTANCE.domain}`], address: thin.ip, prefix: INSTANCE.prefix });
    expect(report.interfacesAddress).toBe(thin.ip);
    return result;
  }

  // Last: the thin instance makes the template read-only (its backing file), and the test above
  // boots the template itself read-write.
  it('boots a thin qcow2 instance (backing file: the raw template) with its own hostname and address', async () => {
    const thin = { host: 'web02', ip: '10.0.2.15' };
    const created = await runBin([
      'instance', 'create', thin.ip, thin.host,
      '--template', template, '--domain', INSTANCE.domain, '--gateway', INSTANCE.gateway, '--netmask', INSTANCE.netmask,
      '--nameserver', INSTANCE.nameserver, '--disk', '128M', '--images-dir', imagesDir, '--format', 'qcow2', '--disk-only', '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const result = await bootThin(created.stdout, thin, 'web02-disk0.qcow2', 'thin-console.log');
    process.stderr.write(`e2e: thin qcow2 boot ${result.seconds.toFixed(1)} s\n`);
  }, 150_000);

  // The same disk as a qcow2 template (template make -O qcow2): a two-layer chain diskwright made
  // end to end (thin overlay → qcow2 template), read by QEMU's own qcow2 driver in the guest.
  it('boots a thin qcow2 instance whose backing file is a qcow2 template (template make -O qcow2)', async () => {
    const started = performance.now();
    const qcow2Template = join(dir, 'debian-tmpl.qcow2');
    const made = await runBin(['template', 'make', join(dir, 'seed.img'), '--partition', '1', '-o', qcow2Template, '-O', 'qcow2', '--json']);
    expect(made.code, made.stderr).toBe(0);
    const thin = { host: 'web03', ip: '10.0.2.15' };
    const created = await runBin([
      'instance', 'create', thin.ip, thin.host,
      '--template', qcow2Template, '--kernel', bootFiles.kernel, ...(bootFiles.initrd ? ['--initrd', bootFiles.initrd] : []),
      '--domain', INSTANCE.domain, '--gateway', INSTANCE.gateway, '--netmask', INSTANCE.netmask,
      '--nameserver', INSTANCE.nameserver, '--disk', '128M', '--images-dir', imagesDir, '--format', 'qcow2', '--disk-only', '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const result = await bootThin(created.stdout, thin, 'web03-disk0.qcow2', 'thin-qcow2-template-console.log');
    process.stderr.write(`e2e: thin over qcow2 template: build ${((performance.now() - started) / 1000 - result.seconds).toFixed(1)} s, boot ${result.seconds.toFixed(1)} s\n`);
  }, 150_000);
});
