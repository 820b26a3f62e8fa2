/**
 * The article's seed disk from an mmdebstrap tarball of Debian 12, built by an unprivileged user
 * with one `disk build`: host e2fsck -fn is clean, host debugfs shows the tarball's owners and
 * modes (setuid su, root:shadow /etc/shadow, device nodes), and the disk boots under QEMU with the
 * Debian kernel and initramfs it contains, into a check program that reports what it sees as PID 1.
 * (A full systemd boot with networking is the real-Debian instance test's job.)
 */
import { chmod, copyFile, link, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { bootDisk } from '../../src/demo/index.js';
import { seedLayout } from '../../src/demo/seed.js';
import { binPath, runBin } from '../helpers/cli.js';
import { debianSystemTarball } from '../helpers/debian-systems.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
const USER = 'diskwright-test';
const isRoot = process.getuid?.() === 0;
const ROOT_BYTES = 1800 * 1024 * 1024;

let dir = '';
let tarball = '';
let disk = '';
let built = { code: -1, stderr: '' };

/** Owner:group mode of every entry under `prefix` in the tarball, as `tar -tv --numeric-owner` lists them. */
async function tarListing(prefix: string): Promise<Map<string, string>> {
  const out = (await execa('tar', ['-tv', '--numeric-owner', '-f', tarball], { env, maxBuffer: 256 * 1024 * 1024 })).stdout;
  const map = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^(\S{10})\s+(\d+)\/(\d+)\s+\S+\s+\S+\s+\S+\s+\.\/(.*?)(?: -> .*| link to .*)?$/.exec(line);
    if (!m || !m[4]!.startsWith(prefix) || m[4]!.slice(prefix.length).replace(/\/$/, '').includes('/') || m[4] === prefix) continue;
    map.set(m[4]!.replace(/\/$/, ''), `${m[1]![0] === 'h' ? '-' : m[1]![0]} ${m[2]}:${m[3]}`);
  }
  return map;
}

/** The same for the image, from debugfs `ls -p` (/ino/mode/uid/gid/name/size/). */
async function imageListing(image: string, directory: string): Promise<Map<string, string>> {
  const out = (await execa('debugfs', ['-R', `ls -p /${directory}`, image], { env })).stdout;
  const map = new Map<string, string>();
  const kinds: Record<string, string> = { '01': 'p', '02': 'c', '04': 'd', '06': 'b', '10': '-', '12': 'l', '14': 's' };
  for (const line of out.split('\n')) {
    const [, , mode, uid, gid, name] = line.split('/');
    if (!name || name === '.' || name === '..') continue;
    map.set(`${directory}/${name}`, `${kinds[mode!.padStart(6, '0').slice(0, 2)] ?? '?'} ${uid}:${gid}`);
  }
  return map;
}

describe.skipIf(!isRoot)('a Debian 12 seed disk from an mmdebstrap tarball, built without root', () => {
  beforeAll(async () => {
    for (const [tool, pkg] of [['mmdebstrap', 'mmdebstrap'], ['debugfs', 'e2fsprogs'], ['runuser', 'util-linux'], ['qemu-system-x86_64', 'qemu-system-x86']] as const) await requireTool(tool, pkg);
    await execa('id', [USER], { reject: false }).then(async (r) => {
      if (r.exitCode !== 0) await execa('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { env });
    });
    const cached = (await debianSystemTarball('ifupdown')).tarball;
    dir = await tempDir('diskwright-e2e-debian-tar-');
    await chmod(tmpdir(), 0o711);
    await chmod(dir, 0o777);
    // The cache lives in root's home; the test user gets its own link (or copy) of the tarball.
    tarball = join(dir, 'rootfs.tar');
    await link(cached, tarball).catch(() => copyFile(cached, tarball));
    await chmod(tarball, 0o644);
    const seed = seedLayout(ROOT_BYTES, 64 * 1024 * 1024);
    const layout = join(dir, 'seed.sfdisk');
    await writeFile(layout, seed.script);
    disk = join(dir, 'debbase.img');
    const r = await execa('runuser', ['-u', USER, '--', process.execPath, binPath, 'disk', 'build', disk, '--size', `${seed.diskBytes / 512}s`, '--layout', layout, '--fs', `1=ext4,label=root:${tarball}`, '--fs', '5=swap'], { env, reject: false });
    built = { code: r.exitCode ?? -1, stderr: r.stderr };
  }, 1_800_000);

  it('is built by the unprivileged user and is clean for host e2fsck', async () => {
    expect(built.code, built.stderr).toBe(0);
    await execa('e2fsck', ['-fn', `${disk}?offset=1048576`], { env });
  });

  it("keeps the tarball's owners and file types in /etc, /usr/bin, /usr/sbin, /var and /dev", async () => {
    for (const directory of ['etc', 'usr/bin', 'usr/sbin', 'var', 'dev']) {
      const theirs = await tarListing(`${directory}/`);
      const ours = await imageListing(`${disk}?offset=1048576`, directory);
      expect(theirs.size).toBeGreaterThan(0);
      expect(Object.fromEntries(ours)).toEqual(Object.fromEntries(theirs));
    }
    const su = (await execa('debugfs', ['-R', 'stat /usr/bin/su', `${disk}?offset=1048576`], { env })).stdout;
    expect(su).toMatch(/Mode:\s+04755/);
    expect(su).toMatch(/User:\s+0\s+Group:\s+0/);
  });

  it('boots with its own Debian kernel and initramfs into a check program', async () => {
    const boot = join(dir, 'boot');
    await mkdir(boot);
    await execa('tar', ['-xf', tarball, '-C', boot, '--wildcards', './boot/vmlinuz-*', './boot/initrd.img-*'], { env });
    const files = (await execa('sh', ['-c', 'ls "$1"/boot', 'sh', boot])).stdout.split('\n');
    const kernel = join(boot, 'boot', files.find((f) => f.startsWith('vmlinuz-'))!);
    const initrd = join(boot, 'boot', files.find((f) => f.startsWith('initrd.img-'))!);
    const check = join(dir, 'check.sh');
    await writeFile(check, '#!/bin/sh\nmount -t proc proc /proc\necho "DISKWRIGHT-CHECK uid=$(id -u) su=$(stat -c %a:%u:%g /usr/bin/su) shadow=$(stat -c %a:%u:%g /etc/shadow)"\necho o > /proc/sysrq-trigger\nsleep 10\n');
    const put = await runBin(['fs', 'put', disk, check, '/diskwright-check', '--mode', '0755', '--partition', '1']);
    expect(put.code, put.stderr).toBe(0);
    const result = await bootDisk({ kernel, initrd, disk, append: 'root=/dev/vda1 ro console=ttyS0 init=/diskwright-check panic=-1', log: join(dir, 'console.log'), memoryMiB: 1024, timeoutMs: 300_000 });
    expect(result.console).toMatch(/DISKWRIGHT-CHECK uid=0 su=4755:0:0 shadow=640:0:42/);
  }, 400_000);
});
