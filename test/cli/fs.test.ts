import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV, hostCat, hostFsck, hostStat, makeExtImage, sha256 } from '../unit/ext/ext-images.js';

let dir: string;
let image: string;
beforeAll(async () => {
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir();
  image = join(dir, 'cli.img');
  await makeExtImage(image, 'ext4');
});

describe('diskwright fs', () => {
  it('puts, lists, cats, stats, links, chmods, chowns, gets and removes, checked with host debugfs', async () => {
    const src = join(dir, 'motd');
    await writeFile(src, 'welcome\n');
    expect(await runInProcess(['fs', 'mkdir', image, '/etc/ssh', '--parents', '--mode', '0700'])).toMatchObject({ code: 0 });
    expect(await runInProcess(['fs', 'put', image, src, '/etc/motd', '--mode', '0640', '--uid', '7', '--gid', '8'])).toMatchObject({ code: 0 });
    expect(await runInProcess(['fs', 'ln', image, 'motd', '/etc/motd.link', '-s'])).toMatchObject({ code: 0 });
    expect(await runInProcess(['fs', 'chmod', image, '0600', '/etc/motd'])).toMatchObject({ code: 0 });
    expect(await runInProcess(['fs', 'chown', image, '9', '/etc/motd'])).toMatchObject({ code: 0 });

    expect((await hostCat(image, '/etc/motd')).toString()).toBe('welcome\n');
    expect(await hostStat(image, '/etc/motd')).toMatchObject({ mode: 0o600, uid: 9, gid: 8 });
    expect(await hostStat(image, '/etc/ssh')).toMatchObject({ type: 'directory', mode: 0o700 });

    const cat = await runInProcess(['fs', 'cat', image, '/etc/motd.link']);
    expect(cat).toMatchObject({ code: 0, stdout: 'welcome\n' });
    const ls = await runInProcess(['fs', 'ls', image, '/etc', '-l']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^-rw------- +1 +9 +8 +8 .* motd$/m);
    expect(ls.stdout).toMatch(/^lrwxrwxrwx .* motd\.link -> motd$/m);
    expect(ls.stdout).toMatch(/^drwx------ .* ssh$/m);
    const json = JSON.parse((await runInProcess(['fs', 'ls', image, '/etc', '--json'])).stdout) as { name: string; kind: string; mode: string }[];
    expect(json.map((e) => [e.name, e.kind, e.mode])).toEqual([
      ['motd', 'file', '0600'],
      ['motd.link', 'symlink', '0777'],
      ['ssh', 'directory', '0700'],
    ]);
    const stat = JSON.parse((await runInProcess(['fs', 'stat', image, '/etc/motd', '--json'])).stdout) as { uid: number; size: number };
    expect(stat).toMatchObject({ uid: 9, size: 8 });

    const out = join(dir, 'motd.out');
    expect(await runInProcess(['fs', 'get', image, '/etc/motd', out])).toMatchObject({ code: 0 });
    expect(await readFile(out, 'utf8')).toBe('welcome\n');

    expect(await runInProcess(['fs', 'rm', image, '/etc', '-r'])).toMatchObject({ code: 0 });
    expect((await runInProcess(['fs', 'ls', image])).stdout).toBe('lost+found/\n');
    expect((await hostFsck(image)).exitCode).toBe(0);
  });

  it('copies a host directory tree in with `fs put`', async () => {
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    await writeFile(join(tree, 'sub', 'a'), 'A');
    await symlink('sub/a', join(tree, 'link'));
    const result = await runInProcess(['fs', 'put', image, tree, '/opt/tree', '--uid', '1000', '--gid', '1000', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ files: 1, directories: 1, symlinks: 1, bytes: 1 });
    expect((await hostCat(image, '/opt/tree/sub/a')).toString()).toBe('A');
    expect(await hostStat(image, '/opt/tree/link')).toMatchObject({ type: 'symlink', uid: 1000 });
  });

  it('reports a missing file as a one-line E_NOT_FOUND error with exit 1 and no stack', async () => {
    const result = await runInProcess(['fs', 'cat', image, '/no/such/file']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('diskwright: /no/such/file: no such file or directory in the image [E_NOT_FOUND]\n');
  });

  it('rejects a `..` escape as a usage error without touching the image', async () => {
    const before = await sha256(image);
    const result = await runInProcess(['fs', 'rm', image, '/../../etc/passwd']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^diskwright: In-image path "\/..\/..\/etc\/passwd" escapes the filesystem root with `..` \[E_INVALID_ARGUMENT\]\n/);
    expect(await sha256(image)).toBe(before);
  });

  it('refuses to write into a filesystem whose journal needs recovery, naming the fix', async () => {
    const dirty = join(dir, 'dirty.img');
    await makeExtImage(dirty, 'ext3');
    await execa('debugfs', ['-w', '-R', 'feature needs_recovery', dirty], { env: SBIN_ENV });
    const result = await runInProcess(['fs', 'mkdir', dirty, '/x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[E_NEEDS_RECOVERY]');
    expect(result.stderr).toContain(`hint: run \`diskwright fsck --fix ${dirty}\` first`);
  });

  it('prints --help with a usage line, options and an example for every fs sub-command', async () => {
    for (const sub of ['ls', 'cat', 'put', 'get', 'rm', 'mkdir', 'ln', 'chmod', 'chown', 'stat']) {
      const result = await runInProcess(['fs', sub, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: diskwright fs ${sub} IMAGE`));
      expect(result.stdout).toContain('--partition N');
      expect(result.stdout).toMatch(/Examples?:\n {2}diskwright fs /);
    }
  });

  it('rejects a bad mode and a bad partition number as usage errors', async () => {
    expect((await runInProcess(['fs', 'chmod', image, '9999', '/'])).code).toBe(2);
    expect((await runInProcess(['fs', 'ls', image, '--partition', 'x'])).code).toBe(2);
    expect((await runInProcess(['fs', 'cat', image])).code).toBe(2);
  });
});

describe('diskwright fs put with --json', () => {
  it('reports progress as JSON lines on stderr for a large file and leaves the data intact', async () => {
    const big = join(dir, 'big.bin');
    const data = Buffer.alloc(12 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 1024) data.writeUInt32LE(i, i);
    await writeFile(big, data);
    const target = join(dir, 'progress.img');
    await makeExtImage(target, 'ext4', '64M');
    const result = await runInProcess(['fs', 'put', target, big, '/big.bin', '--json']);
    expect(result.code).toBe(0);
    const events = result.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; bytes: number; total: number; step: string; phase?: string });
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => e.total === data.length && e.bytes <= data.length)).toBe(true);
    // After the copy, writing the staged changes into the image is a step of its own.
    expect(events.filter((e) => e.event === 'step').map((e) => `${e.step} ${e.phase}`)).toEqual(['commit start', 'commit done']);
    expect(JSON.parse(result.stdout)).toMatchObject({ files: 1, bytes: data.length });
    expect((await hostCat(target, '/big.bin')).equals(data)).toBe(true);
  });

  it('exits 130 and leaves the image untouched when interrupted', async () => {
    const before = await sha256(image);
    const controller = new AbortController();
    controller.abort();
    const result = await runInProcess(['fs', 'mkdir', image, '/interrupted'], { signal: controller.signal });
    expect(result.code).toBe(130);
    // The message names diskwright's step, not the internal tool that was running.
    expect(result.stderr).toMatch(/^diskwright: fs mkdir interrupted; \S+ unchanged \[E_ABORTED\]\n/);
    expect(await sha256(image)).toBe(before);
  });
});
