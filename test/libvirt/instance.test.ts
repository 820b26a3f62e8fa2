/**
 * Opt-in test against real libvirt: DISKWRIGHT_LIBVIRT_TEST=1 npx vitest run test/libvirt
 * Needs virt-install, virsh and qemu-system-x86_64; uses qemu:///session (no root), TCG, user
 * networking and a serial log file. The template comes from the demo pipeline (kernel .deb via
 * apt-get download, busybox root tree, template make). See docs/instance.md.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/demo.js';
import { runBin } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const enabled = process.env.DISKWRIGHT_LIBVIRT_TEST === '1';
const CONNECT = process.env.DISKWRIGHT_LIBVIRT_URI ?? 'qemu:///session';
const HOST = `dwtest${process.pid}`;

describe.skipIf(!enabled)('instance create against real libvirt (DISKWRIGHT_LIBVIRT_TEST=1)', () => {
  it('defines and starts a domain whose guest prints its templated identity, then destroys it', async () => {
    const dir = await tempDir('diskwright-libvirt-');
    const silent = { step: () => undefined, detail: () => undefined, note: () => undefined, progress: () => ({ update: () => undefined, done: () => undefined }) };
    const demo = await runDemo({ dir: join(dir, 'demo'), boot: false, reporter: silent });
    expect(demo.manifest.kernel, 'the demo could not fetch a kernel (needs apt-get download)').toBeDefined();
    const images = join(dir, 'images');
    await mkdir(images);
    const serial = join(dir, 'serial.log');
    const create = await runBin(
      [
        'instance', 'create', '10.0.2.15', HOST,
        '--template', demo.template, '--images-dir', images, '--disk', '256M',
        '--gateway', '10.0.2.2', '--nameserver', '10.0.2.3', '--netmask', '255.255.255.0',
        '--connect', CONNECT, '--virt-type', 'qemu', '--network', 'user', '--graphics', 'none',
        '--cpu', 'qemu64', '--os', 'linux2022', '--serial-log', serial, '--kernel-args', 'panic=-1 net.ifnames=0',
      ],
      { timeout: 300_000 },
    );
    try {
      expect(create.code, create.stderr).toBe(0);
      expect(create.stdout).toContain(`instance ${HOST} started`);
      // The guest prints its hostname to the serial console, then powers off.
      let log = '';
      for (let i = 0; i < 120 && !log.includes(`${HOST}.linux.bogus`); i++) {
        await new Promise((r) => setTimeout(r, 1000));
        log = await readFile(serial, 'utf8').catch(() => '');
      }
      expect(log).toContain(`${HOST}.linux.bogus`);
      const list = await runBin(['instance', 'list', '--connect', CONNECT, '--json']);
      expect((JSON.parse(list.stdout) as { name: string }[]).map((d) => d.name)).toContain(HOST);
    } finally {
      const destroy = await runBin(['instance', 'destroy', HOST, '--connect', CONNECT]);
      expect(destroy.code, destroy.stderr).toBe(0);
      // virt-install may have created an autostarted pool for the images directory: remove it.
      const pools = await execa('virsh', ['--connect', CONNECT, 'pool-list', '--all', '--name'], { reject: false });
      for (const pool of pools.stdout.split('\n').map((p) => p.trim()).filter((p) => p === 'images')) {
        await execa('virsh', ['--connect', CONNECT, 'pool-destroy', pool], { reject: false });
        await execa('virsh', ['--connect', CONNECT, 'pool-undefine', pool], { reject: false });
      }
    }
    const after = await execa('virsh', ['--connect', CONNECT, 'domstate', HOST], { reject: false });
    expect(after.exitCode).not.toBe(0);
  }, 600_000);
});

describe.skipIf(enabled)('real libvirt test', () => {
  it('is skipped unless DISKWRIGHT_LIBVIRT_TEST=1 (see docs/instance.md)', () => {
    expect(enabled).toBe(false);
  });
});
