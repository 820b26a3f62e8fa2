import { mkdir, open, readFile, readdir } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { DEBIAN_LIKE_KERNELS, DEBIAN_LIKE_SWAP_UUID, debugfs, e2fsckCheck, fileExists, makeDiskFromTree, sha256File, writeDebianLikeTree } from '../helpers/debian-like.js';
import type { TemplateManifest } from '../../src/template/index.js';

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  await requireTool('debugfs', 'e2fsprogs');
  await requireTool('e2fsck', 'e2fsprogs');
  await requireTool('sfdisk', 'fdisk');
});

const NEWEST = DEBIAN_LIKE_KERNELS[DEBIAN_LIKE_KERNELS.length - 1]!;

describe.each(['ext2', 'ext3', 'ext4'] as const)('template make on a Debian-like %s disk (host mke2fs 1.47)', (type) => {
  let dir: string;
  let disk: string;
  let template: string;
  let kernelDir: string;
  let sourceHash: string;
  let kernels: Awaited<ReturnType<typeof writeDebianLikeTree>>['kernels'];
  let manifest: TemplateManifest;
  let layout: { start: number; sectors: number };

  beforeAll(async () => {
    dir = await tempDir('diskwright-template-');
    const tree = join(dir, 'root');
    ({ kernels } = await writeDebianLikeTree(tree, { modernNetworking: true }));
    disk = join(dir, 'debbase.img');
    layout = await makeDiskFromTree(tree, disk, { type });
    sourceHash = await sha256File(disk);
    template = join(dir, 'debian-tmpl');
    kernelDir = join(dir, 'kernels');
    const result = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', template, '--kernel-dir', kernelDir, '--json']);
    expect(result.stderr).not.toMatch(/diskwright:/);
    expect(result.code).toBe(0);
    manifest = JSON.parse(result.stdout) as TemplateManifest;
  });

  it('writes the article placeholders, as host debugfs reads them', async () => {
    expect(await debugfs(template, 'cat /etc/hostname')).toBe('HOSTNAME-TMPL\n');
    expect(await debugfs(template, 'cat /etc/resolv.conf')).toBe('nameserver NAMESERVER-TMPL\n');
    expect(await debugfs(template, 'cat /etc/udev/rules.d/70-persistent-net.rules')).toBe('');
    const interfaces = await debugfs(template, 'cat /etc/network/interfaces');
    expect(interfaces).toContain('auto lo\niface lo inet loopback\n');
    expect(interfaces).toContain('source /etc/network/interfaces.d/*\n');
    expect(interfaces).toContain('auto eth0\niface eth0 inet static\n    address ADDRESS-TMPL\n    netmask NETMASK-TMPL\n    gateway GATEWAY-TMPL\n');
    expect(interfaces).not.toContain('dhcp');
    const inittab = await debugfs(template, 'cat /etc/inittab');
    expect(inittab.split('\n')).toContain('T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100');
    expect(inittab.split('\n')).toContain('#T1:23:respawn:/sbin/getty -L ttyS1 9600 vt100');
  });

  it('applies today\'s operations: machine-id, SSH keys, hosts, serial getty, netplan, NetworkManager', async () => {
    expect(await debugfs(template, 'cat /etc/machine-id')).toBe('');
    expect(await debugfs(template, 'stat /var/lib/dbus/machine-id')).toMatch(/Fast link dest: "\/etc\/machine-id"/);
    const ssh = await debugfs(template, 'ls /etc/ssh');
    expect(ssh).toContain('sshd_config');
    expect(ssh).not.toContain('ssh_host_');
    expect(await debugfs(template, 'cat /etc/hosts')).toContain('127.0.1.1\tHOSTNAME-TMPL SHORTNAME-TMPL\n');
    expect(await debugfs(template, 'stat /etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service')).toMatch(
      /link dest: "\/lib\/systemd\/system\/serial-getty@\.service"/,
    );
    expect(await debugfs(template, 'cat /etc/netplan/01-diskwright-eth0.yaml')).toContain('- ADDRESS-TMPL/PREFIX-TMPL');
    expect(await debugfs(template, 'cat /etc/netplan/50-cloud-init.yaml.diskwright-orig')).toContain('dhcp4: true');
    expect(await debugfs(template, 'stat /etc/cloud/cloud-init.disabled')).toMatch(/Size: 0\b/);
    expect(await debugfs(template, 'cat "/etc/NetworkManager/system-connections/Wired connection 1.nmconnection"')).toContain(
      'address1=ADDRESS-TMPL/PREFIX-TMPL,GATEWAY-TMPL',
    );
  });

  it('applies the clean-up operations: fstab, networkd, logs, history, caches, leases, seed, login records, crash data, backups, mail', async () => {
    expect(await debugfs(template, 'cat /etc/fstab')).toBe(`# diskwright: no such device in an instance: UUID=${DEBIAN_LIKE_SWAP_UUID} none swap sw 0 0\n/dev/sr0 /media/cdrom0 udf,iso9660 user,noauto 0 0\n`);
    expect(manifest.kernelArgs).toEqual(['net.ifnames=0', 'noresume']);
    expect(await debugfs(template, 'cat /etc/systemd/network/10-diskwright-eth0.network')).toContain('Address=ADDRESS-TMPL/PREFIX-TMPL');
    expect(await debugfs(template, 'cat /etc/systemd/network/50-dhcp.network.diskwright-orig')).toContain('Name=en*');
    const stat = (path: string) => debugfs(template, `stat ${path}`);
    expect(await stat('/var/log/syslog')).toMatch(/Mode:\s+0640[\s\S]*Size: 0\b/);
    expect(await stat('/var/log/wtmp')).toMatch(/Mode:\s+0664[\s\S]*Size: 0\b/);
    for (const gone of ['/var/log/syslog.1', '/var/log/apt/history.log.2.gz', '/root/.bash_history', '/tmp/build-123', '/var/cache/apt/pkgcache.bin', '/var/cache/apt/archives/ifupdown_0.8.41_amd64.deb', '/var/lib/dhcp/dhclient.enp1s0.leases', '/var/lib/systemd/random-seed', '/var/crash/_usr_bin_x.0.crash', '/etc/default/grub~', '/var/mail/root']) {
      // debugfs prints nothing on stdout for a path that does not exist.
      expect(await stat(gone), gone).toBe('');
    }
    expect(await debugfs(template, 'ls -l /tmp')).toMatch(/41777/);
  });

  it('leaves a filesystem that host e2fsck -fn finds clean', async () => {
    const check = await e2fsckCheck(template);
    expect(check.output).not.toMatch(/differences|Fix\?|error/i);
    expect(check.exitCode).toBe(0);
  });

  it('does not change the source disk', async () => {
    expect(await sha256File(disk)).toBe(sourceHash);
  });

  it('records the placeholders per file, the operations and the source in the manifest', async () => {
    expect(manifest.source).toMatchObject({ disk, partition: 1, start: layout.start, sectors: layout.sectors, sectorSize: 512 });
    expect(manifest.filesystem.kind).toBe(type);
    expect(manifest.filesystem.blockSize * manifest.filesystem.blocksCount).toBe(layout.sectors * 512);
    const files = Object.fromEntries(manifest.files.map((f) => [f.path, f.placeholders]));
    expect(files).toMatchObject({
      '/etc/hostname': ['HOSTNAME-TMPL'],
      '/etc/resolv.conf': ['NAMESERVER-TMPL'],
      '/etc/hosts': ['HOSTNAME-TMPL', 'SHORTNAME-TMPL'],
      '/etc/network/interfaces': ['ADDRESS-TMPL', 'NETMASK-TMPL', 'GATEWAY-TMPL'],
      '/etc/netplan/01-diskwright-eth0.yaml': ['ADDRESS-TMPL', 'PREFIX-TMPL', 'GATEWAY-TMPL', 'NAMESERVER-TMPL'],
    });
    expect(manifest.operations.every((op) => op.status === 'applied')).toBe(true);
    const shown = await runInProcess(['template', 'show', template, '--json']);
    expect({ ...JSON.parse(shown.stdout), output: template }).toEqual(manifest); // make adds `output`
    const text = await runInProcess(['template', 'show', template]);
    expect(text.stdout).toMatch(/\/etc\/hostname\s+HOSTNAME-TMPL/);
  });

  it('copies the newest kernel and initrd byte for byte, as debugfs dumps them', async () => {
    expect(manifest.kernel).toEqual({
      version: NEWEST,
      kernel: join(kernelDir, `vmlinuz-${NEWEST}`),
      initrd: join(kernelDir, `initrd.img-${NEWEST}`),
    });
    const copied = await readFile(manifest.kernel!.kernel);
    expect(copied.equals(kernels[NEWEST]!.vmlinuz)).toBe(true);
    expect((await readFile(manifest.kernel!.initrd!)).equals(kernels[NEWEST]!.initrd)).toBe(true);
    const dumped = join(dir, `dump-${type}`);
    await debugfs(template, `dump /boot/vmlinuz-${NEWEST} ${dumped}`);
    expect((await readFile(dumped)).equals(copied)).toBe(true);
    expect((await readdir(kernelDir)).sort()).toEqual([`initrd.img-${NEWEST}`, `vmlinuz-${NEWEST}`]);
  });

  it('extracts the kernel from the disk partition too (diskwright kernel)', async () => {
    const out = join(dir, `kernel-cli-${type}`);
    const result = await runInProcess(['kernel', disk, '--partition', '1', '-o', out, '--json']);
    expect(result.code).toBe(0);
    const files = JSON.parse(result.stdout) as { version: string; kernel: string; initrd: string };
    expect(files.version).toBe(NEWEST);
    expect((await readFile(files.kernel)).equals(kernels[NEWEST]!.vmlinuz)).toBe(true);
    expect((await readFile(files.initrd)).equals(kernels[NEWEST]!.initrd)).toBe(true);
    const again = await runInProcess(['kernel', disk, '--partition', '1', '-o', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
    expect((await readdir(out)).sort()).toEqual([`initrd.img-${NEWEST}`, `vmlinuz-${NEWEST}`]);
    const forced = await runInProcess(['kernel', disk, '--partition', '1', '-o', out, '--force']);
    expect(forced.code).toBe(0);
  });

  it('refuses to replace the template without --force and leaves it as it was', async () => {
    const before = await sha256File(template);
    const result = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', template]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/already exists.*\[E_EXISTS\]/);
    expect(await sha256File(template)).toBe(before);
  });

  it('reports every operation not-applicable when the template is templated again', async () => {
    // A copy of the disk whose partition 1 holds the finished template.
    const disk2 = join(dir, `disk2-${type}.img`);
    await execa('cp', ['--sparse=always', disk, disk2]);
    const handle = await open(disk2, 'r+');
    try {
      const data = await readFile(template);
      await handle.write(data, 0, data.length, layout.start * 512);
    } finally {
      await handle.close();
    }
    const again = join(dir, `again-${type}`);
    const result = await runInProcess(['template', 'make', disk2, '--partition', '1', '-o', again, '--json']);
    expect(result.code).toBe(0);
    const second = JSON.parse(result.stdout) as TemplateManifest;
    expect(second.operations.filter((op) => op.status === 'applied')).toEqual([]);
    expect(second.files).toEqual(manifest.files);
    expect(await debugfs(again, 'cat /etc/network/interfaces')).toBe(await debugfs(template, 'cat /etc/network/interfaces'));
  });
});

describe('template make failures', () => {
  it('leaves no template, manifest or kernel file when a step fails (no kernel in the image)', async () => {
    const dir = await tempDir('diskwright-template-fail-');
    const tree = join(dir, 'root');
    await writeDebianLikeTree(tree, { withoutKernel: true });
    const disk = join(dir, 'disk.img');
    await makeDiskFromTree(tree, disk, { type: 'ext3', fsMiB: 16 });
    const kernelDir = join(dir, 'kernels');
    await mkdir(kernelDir);
    const result = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', join(dir, 'tmpl'), '--kernel-dir', kernelDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no kernel .*\[E_NOT_FOUND\]/);
    expect((await readdir(dir)).sort()).toEqual(['disk.img', 'kernels', 'root']);
    expect(await readdir(kernelDir)).toEqual([]);
    const fresh = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', join(dir, 'tmpl'), '--kernel-dir', join(dir, 'new-kernels')]);
    expect(fresh.code).toBe(1);
    expect((await readdir(dir)).sort()).toEqual(['disk.img', 'kernels', 'root']);
  });

  it('refuses the extended partition and a partition that does not exist', async () => {
    const dir = await tempDir('diskwright-template-fail-');
    const tree = join(dir, 'root');
    await writeDebianLikeTree(tree, { withoutKernel: true });
    const disk = join(dir, 'disk.img');
    await makeDiskFromTree(tree, disk, { type: 'ext2', fsMiB: 8 });
    const extended = await runInProcess(['template', 'make', disk, '--partition', '2', '-o', join(dir, 't')]);
    expect(extended.code).toBe(2);
    expect(extended.stderr).toMatch(/extended container/);
    const swap = await runInProcess(['template', 'make', disk, '--partition', '5', '-o', join(dir, 't')]);
    expect(swap.code).toBe(1);
    expect(swap.stderr).toMatch(/holds no ext2\/3\/4 filesystem/);
    const missing = await runInProcess(['template', 'make', disk, '--partition', '7', '-o', join(dir, 't')]);
    expect(missing.stderr).toMatch(/no partition 7 .*partitions: 1, 2, 5/);
    expect(await fileExists(join(dir, 't'))).toBe(false);
    expect(await fileExists(join(dir, 't.diskwright.json'))).toBe(false);
  });

  it('refuses a filesystem whose journal needs recovery unless --replay-journal, never writing the source', async () => {
    const dir = await tempDir('diskwright-template-journal-');
    const tree = join(dir, 'root');
    await writeDebianLikeTree(tree, { withoutKernel: true });
    const disk = join(dir, 'disk.img');
    const layout = await makeDiskFromTree(tree, disk, { type: 'ext3', fsMiB: 16 });
    // Mark the journal as needing recovery, as an uncleanly stopped VM leaves it.
    const fsImage = join(dir, 'fs.img');
    await execa('dd', [`if=${disk}`, `of=${fsImage}`, `skip=${layout.start}`, `count=${layout.sectors}`, 'status=none']);
    await execa('debugfs', ['-w', '-R', 'feature needs_recovery', fsImage], { env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    await execa('dd', [`if=${fsImage}`, `of=${disk}`, `seek=${layout.start}`, 'conv=notrunc', 'status=none']);
    const before = await sha256File(disk);
    const refused = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', join(dir, 't')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/partition 1 of .*disk\.img: the ext journal needs recovery .*\[E_NEEDS_RECOVERY\]\n  hint: pass --replay-journal/);
    expect(await fileExists(join(dir, 't'))).toBe(false);
    const replayed = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', join(dir, 't'), '--replay-journal']);
    expect(replayed.stderr).toBe('');
    expect(replayed.code).toBe(0);
    expect(await debugfs(join(dir, 't'), 'cat /etc/hostname')).toBe('HOSTNAME-TMPL\n');
    expect((await e2fsckCheck(join(dir, 't'))).exitCode).toBe(0);
    expect(await sha256File(disk)).toBe(before);
  });

  it('templates partition 1 of a GPT disk as well', async () => {
    const dir = await tempDir('diskwright-template-gpt-');
    const tree = join(dir, 'root');
    await writeDebianLikeTree(tree, { withoutKernel: true });
    const disk = join(dir, 'gpt.img');
    const layout = await makeDiskFromTree(tree, disk, { type: 'ext4', fsMiB: 16, label: 'gpt' });
    const result = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', join(dir, 't'), '--json']);
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as TemplateManifest).source).toMatchObject({ start: layout.start, sectors: layout.sectors });
    expect(await debugfs(join(dir, 't'), 'cat /etc/hostname')).toBe('HOSTNAME-TMPL\n');
    expect((await e2fsckCheck(join(dir, 't'))).exitCode).toBe(0);
  });

  it('templates a Debian-like disk whose filesystem diskwright made itself (mkfs --from, WASM mke2fs)', async () => {
    const dir = await tempDir('diskwright-template-mkfs-');
    const tree = join(dir, 'root');
    await writeDebianLikeTree(tree, { modernNetworking: true });
    const disk = join(dir, 'disk.img');
    await makeDiskFromTree(tree, disk, { type: 'ext4', fsMiB: 24, maker: 'diskwright' });
    const before = await sha256File(disk);
    const template = join(dir, 't');
    const result = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', template, '--kernel-dir', join(dir, 'k'), '--json']);
    expect(result.code).toBe(0);
    const made = JSON.parse(result.stdout) as TemplateManifest;
    expect(made.operations.filter((op) => op.status !== 'applied')).toEqual([]);
    expect(await debugfs(template, 'cat /etc/hostname')).toBe('HOSTNAME-TMPL\n');
    expect(await debugfs(template, 'cat /etc/network/interfaces')).toContain('iface eth0 inet static\n    address ADDRESS-TMPL\n');
    expect((await e2fsckCheck(template)).exitCode).toBe(0);
    expect(await sha256File(disk)).toBe(before);
  });

  it('stops on Ctrl-C and leaves nothing', async () => {
    const dir = await tempDir('diskwright-template-abort-');
    const tree = join(dir, 'root');
    await writeDebianLikeTree(tree, { withoutKernel: true });
    const disk = join(dir, 'disk.img');
    await makeDiskFromTree(tree, disk, { type: 'ext3', fsMiB: 16 });
    const controller = new AbortController();
    controller.abort();
    const result = await runInProcess(['template', 'make', disk, '--partition', '1', '-o', join(dir, 't')], { signal: controller.signal });
    expect(result.code).toBe(130);
    expect((await readdir(dir)).sort()).toEqual(['disk.img', 'root']);
  });
});
