/**
 * Proof by boot: a disk built from the demo root tree becomes a template and an instance, and the
 * instance boots under QEMU (TCG, no root) showing the identity diskwright rendered into it.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOOT_EXTRA_KERNEL_ARGS, bootDisk, buildDemoRoot, ensureBootKit, parseGuestConsole, verifyGuestIdentity, type BootKit } from '../../src/demo/index.js';
import { seedLayout, writeSeedTables } from '../../src/demo/seed.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;
const ROOT_BYTES = 64 * 1024 * 1024;
const INSTANCE = { ip: '10.0.2.15', host: 'web01', domain: 'example.test', gateway: '10.0.2.2', netmask: '255.255.255.0', nameserver: '10.0.2.3', prefix: 24 };
const BOOT_TIMEOUT_MS = 90_000;

async function host(tool: string, args: string[], input?: string): Promise<string> {
  const result = await execa(tool, args, { env: { PATH }, input });
  return result.stdout;
}

/** Host stand-in for the template step until `diskwright template make` lands. */
async function debugfsWrite(image: string, files: Record<string, string>, scratch: string): Promise<void> {
  const commands: string[] = [];
  for (const [path, content] of Object.entries(files)) {
    const local = join(scratch, path.replaceAll('/', '_'));
    await writeFile(local, content);
    commands.push(`rm ${path}`, `write ${local} ${path}`);
  }
  await host('debugfs', ['-w', '-f', '-', image], `${commands.join('\n')}\n`);
}

describe('an instance built by diskwright boots under QEMU', () => {
  let dir: string;
  let kit: BootKit;
  let template: string;
  let instanceDisk: string;
  let kernelArgs: string[];
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

    // 2. a seed-like disk: MBR, p1 ext3 at sector 2048 (bootable), logical swap in an extended partition
    const seed = seedLayout(ROOT_BYTES);
    const disk = join(dir, 'seed.img');
    await writeFile(disk, '');
    await host('truncate', ['-s', String(seed.diskBytes), disk]);
    await writeSeedTables(disk, seed);
    await host('mke2fs', ['-q', '-F', '-t', 'ext3', '-E', `offset=${seed.rootOffset}`, '-d', root, disk, `${ROOT_BYTES / 1024}k`]);

    // 3. template (host stand-in: dd + debugfs)
    template = join(dir, 'debian-tmpl');
    await host('dd', [`if=${disk}`, `of=${template}`, `skip=${seed.rootOffset / 512}`, `count=${ROOT_BYTES / 512}`, 'bs=512', 'status=none']);
    const scratch = join(dir, 'scratch');
    await mkdir(scratch);
    await debugfsWrite(template, {
      '/etc/hostname': 'HOSTNAME-TMPL\n',
      '/etc/network/interfaces': 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\naddress ADDRESS-TMPL\nnetmask NETMASK-TMPL\ngateway GATEWAY-TMPL\n',
      '/etc/resolv.conf': 'nameserver NAMESERVER-TMPL\n',
    }, scratch);

    // 4. instance (host stand-in: cp + debugfs)
    instanceDisk = join(dir, `${INSTANCE.host}-disk0`);
    await copyFile(template, instanceDisk);
    await debugfsWrite(instanceDisk, {
      '/etc/hostname': `${INSTANCE.host}.${INSTANCE.domain}\n`,
      '/etc/network/interfaces': `auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\naddress ${INSTANCE.ip}\nnetmask ${INSTANCE.netmask}\ngateway ${INSTANCE.gateway}\n`,
      '/etc/resolv.conf': `nameserver ${INSTANCE.nameserver}\n`,
    }, scratch);
    kernelArgs = ['root=/dev/vda', 'console=ttyS0', '_device=eth0', `_ip=${INSTANCE.ip}`, `_hostname=${INSTANCE.host}.${INSTANCE.domain}`];
    timings.build = performance.now() - started - timings.kit;
  }, 240_000);

  it('boots the instance disk and shows its hostname and eth0 address on the serial console', async () => {
    const result = await bootDisk({
      kernel: kit.kernel,
      initrd: kit.initrd,
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

  it('rebuilds a byte-identical initramfs from the same inputs (cached by content)', async () => {
    const again = await ensureBootKit({ cacheDir: join(dir, 'kit-cache'), deb: kit.deb });
    expect(again.cached).toBe(false);
    expect(again.version).toBe(kit.version);
    expect(createHash('sha256').update(await readFile(again.initrd)).digest('hex')).toBe(createHash('sha256').update(await readFile(kit.initrd)).digest('hex'));
    expect((await ensureBootKit({ cacheDir: join(dir, 'kit-cache'), deb: kit.deb })).cached).toBe(true);
  }, 120_000);

  it('fails the identity check when the booted disk was not rendered (the template itself)', async () => {
    const result = await bootDisk({
      kernel: kit.kernel,
      initrd: kit.initrd,
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
});
