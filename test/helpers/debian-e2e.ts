/**
 * The real-Debian end-to-end test: a Debian 12 system installed from Debian packages (cached
 * tarball, see debian-rootfs.ts), configured the way the Debian installer leaves it, put on a disk
 * the way a user's installed system is (host sfdisk, mke2fs -d, mkswap — root needed, CI is root),
 * then `template make` → `instance create` with default flags plus `--ssh-key` → QEMU TCG boot with
 * an ssh port forward, and the checks a user would make after logging in.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { runBin } from './cli.js';
import { debianSystemTarball, type DebianNetworkStack } from './debian-systems.js';

export const SBIN_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
/** The base system's names, as an installer would have set them. */
export const BASE_HOST = 'debian';
export const BASE_DOMAIN = 'linux.bogus';
/** The NIC name the installer writes for a q35 virtio NIC (predictable naming). */
export const INSTALLER_NIC = 'enp1s0';
/** QEMU user networking: the guest must be in 10.0.2.0/24 for hostfwd to reach it. */
export const INSTANCE_NET = { gateway: '10.0.2.2', nameserver: '10.0.2.3', netmask: '255.255.255.0', prefix: 24, domain: 'example.test' } as const;
const ROOT_MIB = 1280;
const SWAP_MIB = 64;
/** How long one boot may take to reach a login prompt (TCG on two busy cores: 45–190 s measured). */
export const LOGIN_TIMEOUT_MS = 330_000;

/** What the installer writes for each network stack (installer or cloud-image layouts). */
function networkFiles(stack: DebianNetworkStack): Record<string, string> {
  if (stack === 'ifupdown') {
    return {
      '/etc/network/interfaces': [
        '# This file describes the network interfaces available on your system',
        '# and how to activate them. For more information, see interfaces(5).',
        '',
        'source /etc/network/interfaces.d/*',
        '',
        '# The loopback network interface',
        'auto lo',
        'iface lo inet loopback',
        '',
        '# The primary network interface',
        `allow-hotplug ${INSTALLER_NIC}`,
        `iface ${INSTALLER_NIC} inet dhcp`,
        '',
      ].join('\n'),
    };
  }
  if (stack === 'netplan') {
    // Debian's cloud images: netplan (cloud-init wrote it) rendering for systemd-networkd.
    return {
      '/etc/netplan/50-cloud-init.yaml': ['network:', '  version: 2', '  renderer: networkd', '  ethernets:', `    ${INSTALLER_NIC}:`, '      dhcp4: true', ''].join('\n'),
    };
  }
  // A NetworkManager install: the installer leaves no keyfile; NetworkManager's automatic
  // "Wired connection 1" (DHCP) exists only in memory.
  return {};
}

export interface InstalledDisk {
  readonly disk: string;
  readonly tree: string;
  readonly rootUuid: string;
  readonly swapUuid: string;
  /** The base system's SSH host key (ed25519 public key line) and machine-id. */
  readonly hostKey: string;
  readonly machineId: string;
  readonly seconds: { tarball: number; disk: number };
}

/**
 * Builds the base disk a user would have: MBR with p1 ext4 root (mke2fs -d from the unpacked
 * tree), an extended partition with a logical swap p5 (mkswap), fstab by UUID with the swap line.
 */
export async function buildInstalledDisk(stack: DebianNetworkStack, dir: string): Promise<InstalledDisk> {
  const started = performance.now();
  const { tarball } = await debianSystemTarball(stack, { onBuild: (m) => process.stderr.write(`debian-e2e: ${m}\n`) });
  const tarballSeconds = (performance.now() - started) / 1000;
  const tree = join(dir, 'tree');
  await mkdir(tree);
  await execa('tar', ['-xpf', tarball, '-C', tree, '--numeric-owner'], { env: { PATH: SBIN_PATH } });
  const rootUuid = randomUUID();
  const swapUuid = randomUUID();
  const machineId = randomUUID().replaceAll('-', '');
  const files: Record<string, string> = {
    '/etc/hostname': `${BASE_HOST}\n`,
    '/etc/hosts': [
      '127.0.0.1\tlocalhost',
      `127.0.1.1\t${BASE_HOST}.${BASE_DOMAIN}\t${BASE_HOST}`,
      '',
      '# The following lines are desirable for IPv6 capable hosts',
      '::1     localhost ip6-localhost ip6-loopback',
      'ff02::1 ip6-allnodes',
      'ff02::2 ip6-allrouters',
      '',
    ].join('\n'),
    '/etc/fstab': [
      '# /etc/fstab: static file system information.',
      '# <file system> <mount point>   <type>  <options>       <dump>  <pass>',
      `# / was on /dev/vda1 during installation`,
      `UUID=${rootUuid} /               ext4    errors=remount-ro 0       1`,
      `# swap was on /dev/vda5 during installation`,
      `UUID=${swapUuid} none            swap    sw              0       0`,
      '/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0',
      '',
    ].join('\n'),
    '/etc/machine-id': `${machineId}\n`,
    '/etc/resolv.conf': 'nameserver 192.168.122.1\n',
    ...networkFiles(stack),
  };
  for (const [path, text] of Object.entries(files)) {
    await rm(join(tree, path), { force: true });
    await mkdir(join(tree, path, '..'), { recursive: true });
    await writeFile(join(tree, path), text, { mode: path.startsWith('/etc/netplan/') ? 0o600 : 0o644 });
  }
  // A used system's leftovers the clean-up operations remove.
  await writeFile(join(tree, 'root/.bash_history'), 'apt-get install openssh-server\n', { mode: 0o600 });
  await writeFile(join(tree, 'var/lib/systemd/random-seed'), Buffer.alloc(512, 7), { mode: 0o600 }).catch(() => undefined);
  const hostKey = (await readFile(join(tree, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')).trim();

  const disk = join(dir, 'installed.img');
  const rootSectors = ROOT_MIB * 2048;
  const swapSectors = SWAP_MIB * 2048;
  // p1 at 2048, the extended partition after it, p5 one MiB into the extended one (fdisk's layout).
  const extendedStart = 2048 + rootSectors;
  const totalSectors = extendedStart + 2048 + swapSectors;
  await execa('truncate', ['-s', String(totalSectors * 512), disk]);
  const script = ['label: dos', `start=2048, size=${rootSectors}, type=83, bootable`, `start=${extendedStart}, type=5`, `start=${extendedStart + 2048}, size=${swapSectors}, type=82`, ''].join('\n');
  await execa('sfdisk', ['--quiet', disk], { input: script, env: { PATH: SBIN_PATH } });
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-U', rootUuid, '-d', tree, '-E', `offset=${2048 * 512}`, disk, `${ROOT_MIB}M`], { env: { PATH: SBIN_PATH } });
  const swap = join(dir, 'swap.img');
  await execa('truncate', ['-s', String(swapSectors * 512), swap]);
  await execa('mkswap', ['-q', '-U', swapUuid, swap], { env: { PATH: SBIN_PATH } });
  await execa('dd', [`if=${swap}`, `of=${disk}`, 'bs=1M', `seek=${(extendedStart + 2048) / 2048}`, 'conv=notrunc,sparse', 'status=none']);
  await rm(swap);
  return { disk, tree, rootUuid, swapUuid, hostKey, machineId, seconds: { tarball: tarballSeconds, disk: (performance.now() - started) / 1000 - tarballSeconds } };
}

/** An ed25519 key pair for the ssh checks. */
export async function makeSshKey(dir: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'diskwright-e2e', '-f', key]);
  return { key, pub: `${key}.pub` };
}

/** A TCP port nobody listens on right now (for the hostfwd of one boot). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RunningGuest {
  readonly port: number;
  readonly log: string;
  readonly child: ResultPromise;
  /** Seconds from QEMU start to the ttyS0 login prompt. */
  readonly loginSeconds: number;
  readonly console: () => Promise<string>;
  stop(): Promise<void>;
}

/** Boots an instance disk under QEMU TCG with ssh forwarded to `port`; resolves at the ttyS0 login prompt. */
export async function bootToLogin(options: { kernel: string; initrd?: string; disk: string; append: string; log: string }): Promise<RunningGuest> {
  const port = await freePort();
  await rm(options.log, { force: true });
  const started = performance.now();
  const child = execa(
    'qemu-system-x86_64',
    [
      '-accel', 'tcg', '-cpu', 'max', '-m', '1024', '-machine', 'q35',
      '-kernel', options.kernel,
      ...(options.initrd ? ['-initrd', options.initrd] : []),
      '-append', options.append,
      '-drive', `file=${options.disk},if=virtio,format=raw`,
      '-nic', `user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-nographic', '-serial', `file:${options.log}`, '-monitor', 'none', '-no-reboot',
    ],
    { reject: false, stdin: 'ignore', env: { PATH: SBIN_PATH } },
  );
  const consoleText = (): Promise<string> => readFile(options.log, 'utf8').catch(() => '');
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await child;
  };
  const deadline = started + LOGIN_TIMEOUT_MS;
  for (;;) {
    const text = await consoleText();
    if (/ login: /.test(text)) break;
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop();
      throw new Error(`no login prompt on ttyS0 after ${((performance.now() - started) / 1000).toFixed(0)} s; console tail:\n${text.slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return { port, log: options.log, child, loginSeconds: (performance.now() - started) / 1000, console: consoleText, stop };
}

/** Runs `command` in the guest over the forwarded port with the injected key (retrying while sshd starts). */
export async function sshRun(guest: Pick<RunningGuest, 'port'>, key: string, command: string, options: { retryMs?: number } = {}): Promise<string> {
  const args = [
    '-i', key, '-p', String(guest.port),
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR',
    'root@127.0.0.1', command,
  ];
  const deadline = performance.now() + (options.retryMs ?? 0);
  for (;;) {
    const result = await execa('ssh', args, { reject: false, stdin: 'ignore', timeout: 180_000 });
    if (result.exitCode === 0) return result.stdout;
    // 255: ssh itself failed (connection refused or reset while sshd starts); anything else is the command's.
    if (result.exitCode !== 255 || performance.now() > deadline) {
      throw new Error(`ssh ${command} exited ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

/** What the guest reports after boot, one field per check. */
export interface GuestReport {
  readonly hostname: string;
  readonly eth0: string;
  readonly route: string;
  readonly resolv: string;
  readonly systemState: string;
  readonly failed: string;
  readonly machineId: string;
  readonly hostKey: string;
  readonly timedOut: string;
  readonly swaps: string;
  readonly fstab: string;
  readonly shadowRoot: string;
  /** Diagnostics only: the slowest units of this boot. */
  readonly blame: string;
}

const REPORT_COMMANDS: Record<keyof GuestReport, string> = {
  // Wait for boot to finish (or fail) so the failed list is final.
  systemState: 'timeout 200 systemctl is-system-running --wait || true',
  hostname: 'hostname',
  eth0: 'ip -4 -o addr show dev eth0; ip -o link show dev eth0',
  route: 'ip -4 route show default',
  resolv: 'cat /etc/resolv.conf',
  failed: 'systemctl --failed --no-legend --plain',
  machineId: 'cat /etc/machine-id',
  hostKey: 'cat /etc/ssh/ssh_host_ed25519_key.pub',
  timedOut: "journalctl -b --no-pager | grep -E 'Timed out waiting for device|Dependency failed' || true",
  swaps: 'tail -n +2 /proc/swaps',
  fstab: 'cat /etc/fstab',
  shadowRoot: 'grep ^root: /etc/shadow | cut -d: -f2 | cut -c1-3',
  blame: 'systemd-analyze time; systemd-analyze blame | head -n 8',
};

/** Collects the report over one ssh session (sections split by markers). */
export async function guestReport(guest: Pick<RunningGuest, 'port'>, key: string): Promise<GuestReport> {
  const names = Object.keys(REPORT_COMMANDS) as (keyof GuestReport)[];
  const script = names.map((name) => `echo '@@${name}'; ${REPORT_COMMANDS[name]}`).join('; ');
  const output = await sshRun(guest, key, script, { retryMs: 180_000 });
  const report: Record<string, string> = {};
  let current: string | undefined;
  for (const line of output.split('\n')) {
    const marker = /^@@(\w+)$/.exec(line);
    if (marker) {
      current = marker[1]!;
      report[current] = '';
    } else if (current) report[current] += `${report[current] ? '\n' : ''}${line}`;
  }
  return Object.fromEntries(names.map((n) => [n, (report[n] ?? '').trim()])) as unknown as GuestReport;
}

/** `instance create … --disk-only --json` with the user-net addresses; returns the plan. */
export async function createInstanceDisk(options: { template: string; imagesDir: string; host: string; ip: string; extra?: readonly string[] }): Promise<{ disk: string; kernel: string; initrd: string | null; kernelArgs: string[] }> {
  const created = await runBin([
    'instance', 'create', options.ip, options.host,
    '--template', options.template, '--domain', INSTANCE_NET.domain, '--gateway', INSTANCE_NET.gateway, '--netmask', INSTANCE_NET.netmask,
    '--nameserver', INSTANCE_NET.nameserver, '--disk', '2G', '--images-dir', options.imagesDir, '--disk-only', '--json',
    ...(options.extra ?? []),
  ]);
  if (created.code !== 0) throw new Error(`instance create failed: ${created.stderr}`);
  return JSON.parse(created.stdout) as { disk: string; kernel: string; initrd: string | null; kernelArgs: string[] };
}

/** One boot's outcome, kept for the cross-instance comparisons. */
export interface BootedInstance {
  readonly host: string;
  readonly ip: string;
  readonly report: GuestReport;
  readonly loginSeconds: number;
  readonly banner: string;
}

/** Boots one instance disk, collects the report, stops QEMU. */
export async function bootAndReport(plan: { disk: string; kernel: string; initrd: string | null; kernelArgs: string[] }, key: string, log: string): Promise<{ report: GuestReport; loginSeconds: number; console: string }> {
  const guest = await bootToLogin({ kernel: plan.kernel, ...(plan.initrd ? { initrd: plan.initrd } : {}), disk: plan.disk, append: plan.kernelArgs.join(' '), log });
  try {
    const report = await guestReport(guest, key);
    return { report, loginSeconds: guest.loginSeconds, console: await guest.console() };
  } finally {
    await guest.stop();
  }
}
