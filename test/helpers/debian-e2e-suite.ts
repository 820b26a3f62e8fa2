/**
 * The checks of the real-Debian boot test, shared by the three network-stack test files (one file
 * per stack, so at most two boots run at once with vitest's two workers).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBin } from './cli.js';
import { bootAndReport, buildInstalledDisk, createInstanceDisk, INSTANCE_NET, makeSshKey, type BootedInstance, type InstalledDisk } from './debian-e2e.js';
import type { DebianNetworkStack } from './debian-systems.js';
import { requireTool } from './oracle.js';
import { tempDir } from './tmp.js';

/** Boot-to-login bound asserted per boot (measured 45–190 s under TCG; see docs/instance.md). */
export const LOGIN_BOUND_SECONDS = 300;

/** Registers the suite for one stack; `instances` boots (in sequence) compared with each other. */
export function describeDebianStack(stack: DebianNetworkStack, instances: readonly { host: string; extra?: 'password' }[]): void {
  describe(`a real Debian 12 (${stack}) installed like the installer leaves it`, () => {
    let dir: string;
    let base: InstalledDisk;
    let key: { key: string; pub: string };
    const booted: BootedInstance[] = [];
    let manifest: { operations: { name: string; status: string; detail?: string }[]; kernelArgs?: string[] };

    beforeAll(async () => {
      if (process.getuid?.() !== 0) throw new Error('the real-Debian boot test builds the base disk as root (host mke2fs -d of a root-owned tree); CI runs as root');
      for (const [tool, pkg] of [['mmdebstrap', 'mmdebstrap'], ['qemu-system-x86_64', 'qemu-system-x86'], ['ssh', 'openssh-client'], ['sfdisk', 'fdisk'], ['mkswap', 'util-linux'], ['mke2fs', 'e2fsprogs']] as const) {
        await requireTool(tool, pkg);
      }
      dir = await tempDir(`diskwright-debian-${stack}-`);
      base = await buildInstalledDisk(stack, dir);
      key = await makeSshKey(dir);
      const template = join(dir, 'debian-tmpl');
      const made = await runBin(['template', 'make', base.disk, '--partition', '1', '-o', template, '--kernel-dir', join(dir, 'kernels'), '--json']);
      expect(made.code, made.stderr).toBe(0);
      manifest = JSON.parse(made.stdout) as typeof manifest;
      const imagesDir = join(dir, 'images');
      await mkdir(imagesDir);
      const password = join(dir, 'root-password');
      await writeFile(password, 'correct horse battery staple\n', { mode: 0o600 });
      for (const instance of instances) {
        const plan = await createInstanceDisk({
          template, imagesDir, host: instance.host, ip: '10.0.2.15',
          extra: ['--ssh-key', key.pub, ...(instance.extra === 'password' ? ['--root-password-file', password] : [])],
        });
        const result = await bootAndReport(plan, key.key, join(dir, `${instance.host}-console.log`));
        process.stderr.write(`debian-e2e ${stack} ${instance.host}: tarball ${base.seconds.tarball.toFixed(0)} s, disk ${base.seconds.disk.toFixed(0)} s, boot to login ${result.loginSeconds.toFixed(1)} s\n${result.report.blame}\n`);
        booted.push({ host: instance.host, ip: '10.0.2.15', report: result.report, loginSeconds: result.loginSeconds, banner: result.console });
      }
    }, 1_500_000);

    it('templating commented out the swap line and kept the root entry valid, and instances boot with net.ifnames=0 noresume', () => {
      const fstab = manifest.operations.find((op) => op.name === 'fstab');
      expect(fstab?.status).toBe('applied');
      expect(fstab?.detail).toContain(`commented out none UUID=${base.swapUuid}`);
      expect(manifest.kernelArgs).toEqual(['net.ifnames=0', 'noresume']);
      for (const instance of booted) {
        expect(instance.report.fstab).toMatch(new RegExp(`^UUID=${base.rootUuid} / `, 'm'));
        expect(instance.report.fstab).toMatch(/^# diskwright: no such device in an instance: UUID=\S+ none +swap/m);
        expect(instance.report.swaps).toBe('');
      }
    });

    it('shows a login prompt on ttyS0 within the bound, with the FQDN as host name', () => {
      for (const instance of booted) {
        const fqdn = `${instance.host}.${INSTANCE_NET.domain}`;
        // /etc/issue shows the node name (the FQDN); agetty's prompt cuts it at the first dot.
        expect(instance.banner).toContain(`${fqdn} ttyS0`);
        expect(instance.banner).toContain(`\n${instance.host} login: `);
        expect(instance.report.hostname).toBe(fqdn);
        expect(instance.loginSeconds).toBeLessThan(LOGIN_BOUND_SECONDS);
      }
    });

    it('brings eth0 up with the static address, the default route and resolv.conf from the instance', () => {
      for (const instance of booted) {
        expect(instance.report.eth0).toContain(`inet 10.0.2.15/${INSTANCE_NET.prefix}`);
        expect(instance.report.eth0).toMatch(/state UP/);
        expect(instance.report.route).toContain(`default via ${INSTANCE_NET.gateway} dev eth0`);
        expect(instance.report.resolv).toMatch(new RegExp(`^nameserver ${INSTANCE_NET.nameserver.replaceAll('.', '\\.')}$`, 'm'));
      }
    });

    it('accepts the injected key over ssh (the report was collected that way) and has no failed units or device time-outs', () => {
      for (const instance of booted) {
        expect(instance.report.systemState).toBe('running');
        expect(instance.report.failed).toBe('');
        expect(instance.report.timedOut).toBe('');
        expect(instance.banner).not.toContain('Timed out waiting for device');
      }
    });

    it('gives every instance fresh SSH host keys and a fresh machine-id, different from the base system and from each other', () => {
      for (const instance of booted) {
        expect(instance.report.hostKey).toMatch(/^ssh-ed25519 /);
        expect(instance.report.hostKey.split(' ')[1]).not.toBe(base.hostKey.split(' ')[1]);
        expect(instance.report.machineId).toMatch(/^[0-9a-f]{32}$/);
        expect(instance.report.machineId).not.toBe(base.machineId);
      }
      const keys = new Set(booted.map((b) => b.report.hostKey.split(' ')[1]));
      const ids = new Set(booted.map((b) => b.report.machineId));
      expect(keys.size).toBe(booted.length);
      expect(ids.size).toBe(booted.length);
    });

    if (instances.some((i) => i.extra === 'password')) {
      it('stores --root-password-file as a SHA-512 crypt hash', () => {
        const withPassword = booted.find((b, i) => instances[i]!.extra === 'password')!;
        expect(withPassword.report.shadowRoot).toBe('$6$');
      });
    }
  });
}
