/**
 * Oracle: a tarball made by GNU tar (`--xattrs --acls --numeric-owner --format=posix`) holding
 * root-owned files, a setuid binary, a file capability, a POSIX ACL, user xattrs, hard links,
 * device nodes, a fifo and symlinks becomes — through `diskwright mkfs --from` and `disk build`,
 * run as an unprivileged user — a filesystem where host debugfs shows the same owners, modes,
 * xattrs (ea_list) and link counts as the source tree, and host e2fsck -fn is clean. gzip, xz and
 * zstd archives of the same tar give the same filesystem.
 *
 * Making the source tree needs root (mknod, chown, setcap); CI runs as root and the diskwright
 * commands run as the user `diskwright-test` through runuser.
 */
import { chmod, chown, copyFile, link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
const USER = 'diskwright-test';
const isRoot = process.getuid?.() === 0;
let dir = '';
let tarball = '';

/** Runs the built CLI as the unprivileged test user. */
async function asUser(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('runuser', ['-u', USER, '--', process.execPath, binPath, ...args], { env, reject: false });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function debugfs(image: string, request: string): Promise<string> {
  return (await execa('debugfs', ['-R', request, image], { env })).stdout;
}

/** Owner, mode and link count of `path` in the image, as debugfs stat prints them. */
async function inodeSummary(image: string, path: string): Promise<string> {
  const text = await debugfs(image, `stat ${path}`);
  const type = /Type: (\S+)/.exec(text)?.[1];
  const mode = /Mode:\s+(\d+)/.exec(text)?.[1];
  const user = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(text);
  const links = /Links: (\d+)/.exec(text)?.[1];
  return `${type} ${mode} ${user?.[1]}:${user?.[2]} links=${links}`;
}

describe.skipIf(!isRoot)('mkfs --from a GNU tar archive, as an unprivileged user', () => {
  beforeAll(async () => {
    for (const [tool, pkg] of [['tar', 'tar'], ['debugfs', 'e2fsprogs'], ['e2fsck', 'e2fsprogs'], ['setcap', 'libcap2-bin'], ['setfacl', 'acl'], ['runuser', 'util-linux'], ['zstd', 'zstd'], ['xz', 'xz-utils']] as const) {
      await requireTool(tool, pkg);
    }
    await execa('id', [USER], { reject: false }).then(async (r) => {
      if (r.exitCode !== 0) await execa('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { env });
    });
    dir = await tempDir('diskwright-oracle-tar-');
    // The test user must reach the files: the run's private TMPDIR (root, 0700) becomes traversable.
    await chmod(tmpdir(), 0o711);
    await chmod(dir, 0o777);
    const src = join(dir, 'src');
    for (const d of ['bin', 'etc', 'dev', 'home/user', 'usr/share/doc']) await mkdir(join(src, d), { recursive: true });
    await copyFile('/bin/true', join(src, 'bin', 'ping'));
    await execa('setcap', ['cap_net_raw+ep', join(src, 'bin', 'ping')], { env });
    await copyFile('/bin/true', join(src, 'bin', 'su'));
    await chmod(join(src, 'bin', 'su'), 0o4755);
    await link(join(src, 'bin', 'su'), join(src, 'bin', 'su-hardlink'));
    await writeFile(join(src, 'etc', 'hostname'), 'seed\n');
    await execa('setfattr', ['-n', 'user.comment', '-v', 'kept by the tar path', join(src, 'etc', 'hostname')], { env });
    await writeFile(join(src, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
    await chown(join(src, 'etc', 'shadow'), 0, 42);
    await writeFile(join(src, 'home', 'user', 'notes'), 'mine\n');
    await execa('setfacl', ['-m', 'u:1000:rw,g:100:r', join(src, 'home', 'user', 'notes')], { env });
    await chown(join(src, 'home', 'user', 'notes'), 1000, 1000);
    await chown(join(src, 'home', 'user'), 1000, 1000);
    await execa('mknod', [join(src, 'dev', 'null'), 'c', '1', '3'], { env });
    await execa('mknod', [join(src, 'dev', 'sda1'), 'b', '8', '1'], { env });
    await execa('mkfifo', [join(src, 'dev', 'initctl')], { env });
    await symlink('../bin/ping', join(src, 'usr', 'share', 'doc', 'ping-link'));
    await writeFile(join(src, 'usr', 'share', 'doc', 'big'), Buffer.alloc(300_000, 7));
    await utimes(join(src, 'etc', 'hostname'), new Date('2021-05-06T07:08:09Z'), new Date('2021-05-06T07:08:09Z'));
    tarball = join(dir, 'rootfs.tar');
    await execa('tar', ['--xattrs', "--xattrs-include=*", '--acls', '--numeric-owner', '--format=posix', '-C', src, '-cf', tarball, '.'], { env });
    await execa('gzip', ['-k', tarball], { env });
    await execa('xz', ['-k', '-T1', tarball], { env });
    await execa('zstd', ['-q', '-k', tarball], { env });
  }, 120_000);

  const expected: [string, string][] = [
    ['/bin/ping', 'regular 0755 0:0 links=1'],
    ['/bin/su', 'regular 04755 0:0 links=2'],
    ['/bin/su-hardlink', 'regular 04755 0:0 links=2'],
    ['/etc/shadow', 'regular 0640 0:42 links=1'],
    ['/home/user', 'directory 0755 1000:1000 links=2'],
    ['/home/user/notes', 'regular 0664 1000:1000 links=1'],
    ['/dev/null', 'character 0644 0:0 links=1'],
    ['/dev/sda1', 'block 0644 0:0 links=1'],
    ['/dev/initctl', 'FIFO 0644 0:0 links=1'],
    ['/usr/share/doc/ping-link', 'symlink 0777 0:0 links=1'],
  ];

  async function expectSourceTree(image: string): Promise<void> {
    await execa('e2fsck', ['-fn', image], { env });
    for (const [path, summary] of expected) expect(`${path} ${await inodeSummary(image, path)}`).toBe(`${path} ${summary}`);
    expect(await debugfs(image, 'ea_list /bin/ping')).toContain('security.capability (20) = 01 00 00 02 00 20 00 00');
    expect(await debugfs(image, 'ea_list /etc/hostname')).toContain('user.comment (20) = "kept by the tar path"');
    const acl = await debugfs(image, 'ea_list /home/user/notes');
    expect(acl).toContain('system.posix_acl_access');
    // ext4's ACL encoding: named user 1000 (e8 03) rw, named group 100 (64 00) r.
    expect(acl).toMatch(/02 00 06 00 e8 03 00 00/);
    expect(acl).toMatch(/08 00 04 00 64 00 00 00/);
    expect(await debugfs(image, 'stat /dev/sda1')).toMatch(/Device major\/minor number: 08:01/);
    expect(await debugfs(image, 'cat /etc/hostname')).toBe('seed');
    expect(await debugfs(image, 'stat /etc/hostname')).toMatch(/mtime: 0x609395d9/);
    expect((await debugfs(image, 'stat /usr/share/doc/big')).match(/Size: (\d+)/)?.[1]).toBe('300000');
  }

  it('keeps owners, modes, capabilities, ACLs, xattrs, hard links and devices from a plain tar', async () => {
    const image = join(dir, 'plain.img');
    const result = await asUser(['mkfs', image, '--type', 'ext4', '--size', '64M', '--from', tarball]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await expectSourceTree(image);
  });

  for (const ext of ['gz', 'xz', 'zst']) {
    it(`reads the same tree from a .tar.${ext} archive`, async () => {
      const image = join(dir, `${ext}.img`);
      const result = await asUser(['mkfs', image, '--type', 'ext3', '--size', '64M', '--from', `${tarball}.${ext}`]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      await expectSourceTree(image);
    });
  }

  it('builds a whole partitioned disk from the tarball with disk build, swap included', async () => {
    const layout = join(dir, 'seed.sfdisk');
    await writeFile(layout, 'label: dos\nlabel-id: 0x20130b0b\nsize=64M, type=83, bootable\ntype=5\ntype=82\n');
    const image = join(dir, 'disk.img');
    const result = await asUser(['disk', 'build', image, '--size', '96M', '--layout', layout, '--fs', '1=ext3,label=root:' + tarball, '--fs', '5=swap,uuid=1b4e28ba-2fa1-11d2-883f-b9a761bde3fb', '--json']);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as { filesystems: { partition: number; offset: number }[] };
    expect(summary.filesystems.map((f) => [f.partition, f.offset])).toEqual([[1, 1048576], [5, 135168 * 512]]);
    await expectSourceTree(`${image}?offset=1048576`);
    const swap = (await execa('blkid', ['-p', '-O', String(135168 * 512), '-o', 'export', image], { env })).stdout;
    expect(swap).toMatch(/^TYPE=swap$/m);
    const steps = result.stderr.split('\n').filter((l) => l.includes('"event":"step"')).map((l) => (JSON.parse(l) as { title: string }).title);
    expect(steps).toEqual(['partition table (dos, 3 partitions)', `partition 1: ext3 from ${tarball}`, 'partition 5: swap']);
    // --json progress of the fill ends with the full counts: 6 regular files, hard links once.
    const fills = result.stderr.split('\n').filter((l) => l.includes('"event":"progress"')).map((l) => JSON.parse(l) as { files: number; totalFiles: number });
    expect(fills.at(-1)).toMatchObject({ files: 6, totalFiles: 6 });
  });

  it('makes a user-owned directory root-owned with --owner root', async () => {
    const tree = join(dir, 'user-tree');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc', 'motd'), 'hello\n');
    await execa('chown', ['-R', `${USER}:`, tree], { env });
    const image = join(dir, 'owner.img');
    const result = await asUser(['mkfs', image, '--size', '16M', '--from', tree, '--owner', 'root']);
    expect(result.code).toBe(0);
    expect(await inodeSummary(image, '/etc/motd')).toBe('regular 0644 0:0 links=1');
    await execa('e2fsck', ['-fn', image], { env });
  });

  it('translates listed owners with --owner-map and keeps the others', async () => {
    const tree = join(dir, 'map-tree');
    await mkdir(join(tree, 'srv'), { recursive: true });
    await writeFile(join(tree, 'srv', 'mine'), 'a\n');
    await writeFile(join(tree, 'srv', 'other'), 'b\n');
    await execa('chown', ['-R', `${USER}:`, tree], { env });
    await chown(join(tree, 'srv', 'other'), 1234, 4321);
    const uid = (await execa('id', ['-u', USER])).stdout.trim();
    const gid = (await execa('id', ['-g', USER])).stdout.trim();
    const map = join(dir, 'owners.map');
    await writeFile(map, `# the build user's files become root's\nuid ${uid} 0\ngid ${gid} 0\n`);
    const image = join(dir, 'map.img');
    const result = await asUser(['mkfs', image, '--size', '16M', '--from', tree, '--owner-map', map]);
    expect(result.code, result.stderr).toBe(0);
    expect(await inodeSummary(image, '/srv/mine')).toBe('regular 0644 0:0 links=1');
    expect(await inodeSummary(image, '/srv/other')).toBe('regular 0644 1234:4321 links=1');
  });

  it('rejects a tar entry that escapes the root with one line', async () => {
    const evil = join(dir, 'evil.tar');
    await execa('tar', ['-C', dir, '--absolute-names', '-cf', evil, 'src/etc/hostname', '--transform', 's,^src/etc,../../x,'], { env });
    const result = await asUser(['mkfs', join(dir, 'evil.img'), '--size', '16M', '--from', evil]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(2);
    expect(result.stderr).toMatch(/`\.\.` component that would escape the root/);
  });
});
