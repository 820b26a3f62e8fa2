/**
 * Opt-in test against real libvirt: `npm run test:libvirt` (DISKWRIGHT_LIBVIRT_TEST=1 vitest run test/libvirt).
 * Needs virt-install, virsh, a running libvirt daemon and qemu-system-x86_64. The connection is
 * DISKWRIGHT_LIBVIRT_URI, else qemu:///system as root (start `virtlogd -d` and `libvirtd -d` by
 * hand where there is no systemd) and qemu:///session otherwise. The guest runs under TCG
 * (--virt-type qemu), with user networking and its serial console in a log file. The template
 * comes from the demo pipeline (kernel .deb via apt-get download, busybox root tree, template
 * make). See docs/instance.md, "Testing against real libvirt".
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/demo.js';
import { parseGuestConsole, verifyGuestIdentity } from '../../src/demo/console.js';
import { runBin } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const enabled = process.env.DISKWRIGHT_LIBVIRT_TEST === '1';
const CONNECT = process.env.DISKWRIGHT_LIBVIRT_URI || (process.getuid?.() === 0 ? 'qemu:///system' : 'qemu:///session');
const HOST = `dwtest${process.pid}`;
const IP = '10.0.2.15';
/** Longest wait for the guest to print its report and power off (TCG, loaded 2-core machine). */
const BOOT_TIMEOUT_MS = 240_000;
const TOOL_ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' };

async function virsh(args: readonly string[]) {
  return execa('virsh', ['--connect', CONNECT, ...args], { reject: false, env: TOOL_ENV });
}

/** Pools on the connection with their target directories (virt-install may autostart one for the images dir). */
async function poolTargets(): Promise<Map<string, string>> {
  const names = (await virsh(['pool-list', '--all', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const targets = new Map<string, string>();
  for (const name of names) {
    const xml = (await virsh(['pool-dumpxml', name])).stdout;
    targets.set(name, /<target>[\s\S]*?<path>([^<]*)<\/path>/.exec(xml)?.[1] ?? '');
  }
  return targets;
}

describe.skipIf(!enabled)(`instance create against real libvirt at ${CONNECT} (DISKWRIGHT_LIBVIRT_TEST=1)`, () => {
  beforeAll(async () => {
    const probe = await virsh(['list', '--all', '--name']).catch((error: Error) => ({ exitCode: 127, stderr: error.message, stdout: '' }));
    if (probe.exitCode !== 0) {
      throw new Error(
        `libvirt is not reachable at ${CONNECT}: ${String(probe.stderr).split('\n').filter(Boolean).join(' / ') || `exit ${probe.exitCode}`}\n` +
          'Install virtinst, libvirt-clients and libvirt-daemon-system; without systemd start the daemons by hand as root ' +
          '(`virtlogd -d && libvirtd -d`), or point DISKWRIGHT_LIBVIRT_URI at a working connection. See docs/instance.md.',
      );
    }
    const virtInstall = await execa('virt-install', ['--version'], { reject: false, env: TOOL_ENV }).catch(() => ({ exitCode: 127 }));
    if (virtInstall.exitCode !== 0) throw new Error('virt-install is not installed (apt-get install virtinst); see docs/instance.md');
  });

  it('defines and starts a domain whose guest prints its templated hostname and IP, then destroy removes domain, disk and pool', async () => {
    const dir = await tempDir('diskwright-libvirt-');
    const silent = { step: () => undefined, detail: () => undefined, note: () => undefined, progress: () => ({ update: () => undefined, done: () => undefined }) };
    const demo = await runDemo({ dir: join(dir, 'demo'), boot: false, reporter: silent });
    expect(demo.manifest.kernel, 'the demo could not fetch a kernel (needs apt-get download)').toBeDefined();
    const images = join(dir, 'images');
    await mkdir(images);
    const disk = join(images, `${HOST}-disk0`);
    const serial = join(dir, 'serial.log');
    const poolsBefore = await poolTargets();
    // libvirt runs `numad -w VCPUS:MIB` for --cpuset=auto; it answers as root, but not for an
    // unprivileged session user (no log file, no message queue). Same user, same answer.
    const numad = (await execa('numad', ['-w', '1:512'], { reject: false, env: TOOL_ENV }).catch(() => ({ exitCode: 127 }))).exitCode === 0;

    const started = performance.now();
    const create = await runBin(
      [
        'instance', 'create', IP, HOST,
        '--template', demo.template, '--images-dir', images, '--disk', '256M',
        '--gateway', '10.0.2.2', '--nameserver', '10.0.2.3', '--netmask', '255.255.255.0',
        // The article's flags (--cpu host, --graphics vnc, --cpuset=auto, OS detection) except
        // what this host needs: TCG, user networking (no br0), the serial console in a file, and
        // no automatic CPU placement when numad is missing (libvirt asks numad for --cpuset=auto).
        '--connect', CONNECT, '--virt-type', 'qemu', '--network', 'user',
        ...(numad ? [] : ['--cpuset', 'none']),
        '--serial-log', serial, '--kernel-args', 'panic=-1 net.ifnames=0',
      ],
      { timeout: 300_000, env: TOOL_ENV },
    );
    const createSeconds = (performance.now() - started) / 1000;
    let destroyed = false;
    try {
      expect(create.code, create.stderr).toBe(0);
      expect(create.stdout).toContain(`instance ${HOST} started`);
      // virt-install's autostarted pool for the images directory was removed again by create.
      expect([...(await poolTargets()).values()]).not.toContain(images);

      const list = await runBin(['instance', 'list', '--connect', CONNECT, '--json'], { env: TOOL_ENV });
      const mine = (JSON.parse(list.stdout) as { name: string; disks: { source: string }[] }[]).find((d) => d.name === HOST);
      expect(mine?.disks.map((d) => d.source)).toContain(disk);

      // The guest prints its identity to the serial console and powers off (domain → shut off).
      const bootStarted = performance.now();
      let state = '';
      while (performance.now() - bootStarted < BOOT_TIMEOUT_MS) {
        state = (await virsh(['domstate', HOST])).stdout.trim();
        if (state === 'shut off') break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const bootSeconds = (performance.now() - bootStarted) / 1000;
      const log = await readFile(serial, 'utf8').catch(() => '');
      expect(state, `guest did not power off within ${BOOT_TIMEOUT_MS / 1000} s; serial log:\n${log.slice(-2000)}`).toBe('shut off');
      const report = parseGuestConsole(log);
      verifyGuestIdentity(report, { hostnames: [`${HOST}.linux.bogus`], address: IP, prefix: 24 });
      expect(report.hostname).toBe(`${HOST}.linux.bogus`);
      expect(report.eth0Addresses).toContain(`${IP}/24`);
      console.log(`[libvirt ${CONNECT}, --cpuset ${numad ? 'auto' : 'none'}] create (copy … virt-install, virsh start) ${createSeconds.toFixed(1)} s; boot to power-off ${bootSeconds.toFixed(1)} s`);

      const destroy = await runBin(['instance', 'destroy', HOST, '--connect', CONNECT, '--json'], { env: TOOL_ENV });
      destroyed = destroy.code === 0;
      expect(destroy.code, destroy.stderr).toBe(0);
      expect(JSON.parse(destroy.stdout)).toMatchObject({ host: HOST, removedDisks: [disk] });
    } finally {
      if (!destroyed) {
        // Leave nothing behind even when an assertion failed.
        await virsh(['destroy', HOST]);
        await virsh(['undefine', HOST]);
        await rm(disk, { force: true });
      }
      for (const [name, target] of await poolTargets()) {
        if (!poolsBefore.has(name) && target === images) {
          await virsh(['pool-destroy', name]);
          await virsh(['pool-undefine', name]);
        }
      }
    }
    expect((await virsh(['domstate', HOST])).exitCode).not.toBe(0);
    expect(await stat(disk).then(() => 'exists', () => 'gone')).toBe('gone');
    expect([...(await poolTargets()).values()]).not.toContain(images);
    expect([...(await poolTargets()).keys()].sort()).toEqual([...poolsBefore.keys()].sort());
  }, 900_000);
});

describe.skipIf(enabled)('real libvirt test', () => {
  it('is skipped unless DISKWRIGHT_LIBVIRT_TEST=1 (see docs/instance.md)', () => {
    expect(enabled).toBe(false);
  });
});
