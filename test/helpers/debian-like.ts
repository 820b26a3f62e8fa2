import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { makeFilesystem } from '../../src/e2fs/index.js';

/** PATH with the sbin directories where e2fsprogs and sfdisk live. */
export const SBIN_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

export interface DebianLikeOptions {
  /** Leave out /boot (for "no kernel" failure tests). */
  readonly withoutKernel?: boolean;
  /** Add netplan and NetworkManager configurations (a "today's" image). */
  readonly modernNetworking?: boolean;
}

/** The kernel versions the tree carries, oldest first (the newest must be picked). */
/** The swap partition UUID the Debian-like fstab names (the instance never has it). */
export const DEBIAN_LIKE_SWAP_UUID = '5b0e9a3c-2f41-4c1e-9d5a-7e6b8c9d0a1f';
export const DEBIAN_LIKE_KERNELS = ['6.1.0-9-amd64', '6.1.0-13-amd64'] as const;

export const DEBIAN_INTERFACES = [
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
  'allow-hotplug eth0',
  'iface eth0 inet dhcp',
  '',
].join('\n');

export const DEBIAN_INITTAB = [
  'id:2:initdefault:',
  'si::sysinit:/etc/init.d/rcS',
  '1:2345:respawn:/sbin/getty 38400 tty1',
  '2:23:respawn:/sbin/getty 38400 tty2',
  '# Example how to put a getty on a serial line (for a terminal)',
  '#',
  '#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100',
  '#T1:23:respawn:/sbin/getty -L ttyS1 9600 vt100',
  '',
].join('\n');

async function put(root: string, path: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
  const host = join(root, path);
  await mkdir(dirname(host), { recursive: true });
  await writeFile(host, content);
  await chmod(host, mode);
}

/**
 * Writes a Debian-like root tree (what a Debian 12 install has in the files templating touches)
 * into `root`. Kernel/initrd contents are random bytes, returned so tests can compare copies.
 */
export async function writeDebianLikeTree(root: string, options: DebianLikeOptions = {}): Promise<{ kernels: Record<string, { vmlinuz: Buffer; initrd: Buffer }> }> {
  await put(root, 'etc/hostname', 'debbase\n');
  await put(root, 'etc/hosts', '127.0.0.1\tlocalhost\n127.0.1.1\tdebbase.linux.bogus\tdebbase\n\n# IPv6\n::1     localhost ip6-localhost ip6-loopback\n');
  await put(root, 'etc/resolv.conf', 'domain linux.bogus\nsearch linux.bogus\nnameserver 192.168.1.1\n');
  await put(root, 'etc/network/interfaces', DEBIAN_INTERFACES);
  await mkdir(join(root, 'etc/network/interfaces.d'), { recursive: true });
  await put(root, 'etc/inittab', DEBIAN_INITTAB);
  await put(root, 'etc/machine-id', '3f2a9c0e8d7b4a5f9e1c2b3a4d5e6f70\n', 0o444);
  await mkdir(join(root, 'var/lib/dbus'), { recursive: true });
  await symlink('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
  await put(root, 'etc/ssh/sshd_config', 'Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n');
  for (const type of ['rsa', 'ecdsa', 'ed25519']) {
    await put(root, `etc/ssh/ssh_host_${type}_key`, `-----BEGIN OPENSSH PRIVATE KEY-----\n${randomBytes(48).toString('base64')}\n`, 0o600);
    await put(root, `etc/ssh/ssh_host_${type}_key.pub`, `ssh-${type} AAAA${randomBytes(24).toString('base64')} root@debbase\n`);
  }
  await put(root, 'etc/udev/rules.d/70-persistent-net.rules', '# generated\nSUBSYSTEM=="net", ACTION=="add", ATTR{address}=="52:54:00:aa:bb:cc", NAME="eth0"\n');
  await put(root, 'lib/systemd/system/serial-getty@.service', '[Unit]\nDescription=Serial Getty on %I\n');
  await put(root, 'lib/systemd/system/ssh.service', '[Unit]\nDescription=OpenBSD Secure Shell server\n');
  await mkdir(join(root, 'etc/systemd/system/getty.target.wants'), { recursive: true });
  await symlink('/lib/systemd/system/getty@.service', join(root, 'etc/systemd/system/getty.target.wants/getty@tty1.service'));
  await put(root, 'etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n');
  if (options.modernNetworking) {
    await put(root, 'etc/cloud/cloud.cfg', 'datasource_list: [ NoCloud, None ]\n');
    await put(root, 'etc/netplan/50-cloud-init.yaml', 'network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n', 0o600);
    await put(
      root,
      'etc/NetworkManager/system-connections/Wired connection 1.nmconnection',
      '[connection]\nid=Wired connection 1\ntype=ethernet\n\n[ethernet]\nmac-address=52:54:00:AA:BB:CC\n\n[ipv4]\nmethod=auto\n',
      0o600,
    );
    // What a used, installed system leaves behind (every clean-up operation has work to do).
    await put(root, 'etc/fstab', `UUID=${DEBIAN_LIKE_SWAP_UUID} none swap sw 0 0\n/dev/sr0 /media/cdrom0 udf,iso9660 user,noauto 0 0\n`);
    await put(root, 'etc/systemd/network/50-dhcp.network', '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n');
    await put(root, 'var/log/syslog', 'Dec  1 12:00:00 debbase kernel: booted\n', 0o640);
    await put(root, 'var/log/syslog.1', 'older\n', 0o640);
    await put(root, 'var/log/apt/history.log.2.gz', randomBytes(64));
    await put(root, 'var/log/wtmp', Buffer.alloc(384, 1), 0o664);
    await put(root, 'root/.bash_history', 'ls\n', 0o600);
    await put(root, 'tmp/build-123/x', 'x\n');
    await chmod(join(root, 'tmp'), 0o1777);
    await put(root, 'var/cache/apt/pkgcache.bin', randomBytes(128));
    await put(root, 'var/cache/apt/archives/ifupdown_0.8.41_amd64.deb', randomBytes(128));
    await put(root, 'var/lib/dhcp/dhclient.enp1s0.leases', 'lease {\n  fixed-address 192.168.1.50;\n}\n');
    await put(root, 'var/lib/systemd/random-seed', randomBytes(512), 0o600);
    await put(root, 'var/crash/_usr_bin_x.0.crash', 'ProblemType: Crash\n');
    await put(root, 'etc/default/grub~', 'GRUB_TIMEOUT=5\n');
    await put(root, 'var/mail/root', 'From root Mon Dec  1 12:00:00 2026\n');
  }
  const kernels: Record<string, { vmlinuz: Buffer; initrd: Buffer }> = {};
  if (!options.withoutKernel) {
    for (const version of DEBIAN_LIKE_KERNELS) {
      const vmlinuz = randomBytes(300_000 + version.length);
      const initrd = randomBytes(700_000 + version.length);
      await put(root, `boot/vmlinuz-${version}`, vmlinuz);
      await put(root, `boot/initrd.img-${version}`, initrd);
      await put(root, `boot/config-${version}`, `CONFIG_EXT4_FS=y\n`);
      kernels[version] = { vmlinuz, initrd };
    }
    const newest = DEBIAN_LIKE_KERNELS[DEBIAN_LIKE_KERNELS.length - 1];
    await symlink(`boot/vmlinuz-${newest}`, join(root, 'vmlinuz'));
    await symlink(`boot/initrd.img-${newest}`, join(root, 'initrd.img'));
  }
  return { kernels };
}

export interface DiskLayout {
  /** First sector of partition 1 (the root filesystem). */
  readonly start: number;
  /** Its length in sectors. */
  readonly sectors: number;
}

/**
 * Builds the article's disk shape from a tree: an MBR disk with partition 1 (type 83, bootable)
 * at sector 2048 holding an ext filesystem made by host `mke2fs -d`, and an extended partition
 * with a logical swap partition after it.
 */
export async function makeDiskFromTree(
  tree: string,
  disk: string,
  options: {
    type: 'ext2' | 'ext3' | 'ext4';
    fsMiB?: number;
    label?: 'dos' | 'gpt';
    /** `host`: host mke2fs -d (default); `diskwright`: the project's WASM mke2fs (`mkfs --from`) in place. */
    maker?: 'host' | 'diskwright';
  },
): Promise<DiskLayout> {
  const fsMiB = options.fsMiB ?? 48;
  const fsImage = `${disk}.fs`;
  const env = { PATH: SBIN_PATH, E2FSPROGS_FAKE_TIME: '', MKE2FS_CONFIG: '' };
  await rm(fsImage, { force: true });
  const host = options.maker !== 'diskwright';
  if (host) await execa('mke2fs', ['-q', '-F', '-t', options.type, '-d', tree, '-L', 'debroot', fsImage, `${fsMiB}M`], { env, extendEnv: true });
  const start = 2048;
  const sectors = fsMiB * 2048;
  const swapSectors = 8 * 2048;
  const total = start + sectors + 2 + 2048 + swapSectors + 2048;
  await rm(disk, { force: true });
  await writeFile(disk, '');
  await truncate(disk, total * 512);
  const script = options.label === 'gpt' ? ['label: gpt', `start=${start}, size=${sectors}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4`, ''].join('\n') : [
    'label: dos',
    `start=${start}, size=${sectors}, type=83, bootable`,
    `start=${start + sectors + 2048}, size=${swapSectors + 1024}, type=5`,
    `start=${start + sectors + 4096}, size=${swapSectors - 2048}, type=82`,
    '',
  ].join('\n');
  await execa('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', disk], { input: script, env, extendEnv: true });
  if (!host) {
    await makeFilesystem(disk, { type: options.type, size: fsMiB * 1024 * 1024, fromDirectory: tree, label: 'debroot', offset: start * 512 });
    return { start, sectors };
  }
  const data = await readFile(fsImage);
  const handle = await open(disk, 'r+');
  try {
    await handle.write(data, 0, data.length, start * 512);
  } finally {
    await handle.close();
  }
  await rm(fsImage, { force: true });
  return { start, sectors };
}

/** sha256 of a file (source-unchanged checks). */
export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Runs host debugfs -R REQUEST on an image and returns stdout. */
export async function debugfs(image: string, request: string): Promise<string> {
  const result = await execa('debugfs', ['-R', request, image], { env: { PATH: SBIN_PATH }, extendEnv: true, stripFinalNewline: false });
  return result.stdout;
}

/** Host `e2fsck -fn`: exit code and output. */
export async function e2fsckCheck(image: string): Promise<{ exitCode: number; output: string }> {
  const result = await execa('e2fsck', ['-fn', image], { env: { PATH: SBIN_PATH }, extendEnv: true, reject: false, all: true });
  return { exitCode: result.exitCode ?? -1, output: result.all ?? '' };
}

export async function fileExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
