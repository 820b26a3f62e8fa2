import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile, chmod, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV, hostFsck } from '../unit/ext/ext-images.js';

// `fs get` of a large tree: the `ext2fs` package's readdir leaked an open file per call into its
// fixed 16 MiB heap, so ~1,000 directories (4 KiB blocks) ended in "Aborted(OOM)". Oracle: the
// tree host `debugfs -R "rdump …"` extracts from the same image — names, kinds, permission bits,
// contents, symlink targets, and the mtimes of files and directories (both keep them; rdump sets
// no symlink times). Directories are hash-indexed by host `e2fsck -fD`, inline (inline_data) and
// on 1 KiB blocks.

let dir: string;
beforeAll(async () => {
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir();
});

const BASE_TIME = 1_600_000_000;

/** A host tree at `root/tree`: `dirs` directories of one file each, and the sharp edges below. */
async function makeTree(root: string, dirs: number, bigDirEntries: number): Promise<void> {
  const tree = join(root, 'tree');
  await mkdir(join(tree, 'big'), { recursive: true });
  for (let i = 0; i < dirs; i += 1) {
    const d = join(tree, `d${i}`);
    await mkdir(d);
    await writeFile(join(d, 'f'), `file ${i}\n`);
    await chmod(join(d, 'f'), [0o644, 0o600, 0o755, 0o700][i % 4]!);
    await utimes(join(d, 'f'), BASE_TIME + i, BASE_TIME + 2 * i);
    await utimes(d, BASE_TIME, BASE_TIME + 7 * i);
  }
  // One directory with many entries (several blocks; htree-indexed after e2fsck -D).
  for (let i = 0; i < bigDirEntries; i += 1) await writeFile(join(tree, 'big', `entry-with-a-longer-name-${i}`), '');
  await utimes(join(tree, 'big'), BASE_TIME, BASE_TIME + 1);
  await mkdir(join(tree, 'empty'));
  await mkdir(join(tree, 'readonly'));
  await writeFile(join(tree, 'readonly', 'inside'), 'x');
  await chmod(join(tree, 'readonly'), 0o555);
  await symlink('d0/f', join(tree, 'short-link'));
  await symlink(`/${'long/'.repeat(30)}target`, join(tree, 'long-link'));
  const pattern = Buffer.alloc(2 * 1024 * 1024 + 123);
  for (let i = 0; i < pattern.length; i += 1) pattern[i] = (i * 131 + 7) & 0xff;
  await writeFile(join(tree, 'pattern.bin'), pattern);
  await writeFile(join(tree, 'sparse.bin'), 'head');
  await truncate(join(tree, 'sparse.bin'), 5 * 1024 * 1024);
  await utimes(tree, BASE_TIME, BASE_TIME + 99);
}

interface Node {
  kind: string;
  mode?: number;
  content?: string;
  mtime?: number;
}

/** Everything under `root` the comparison covers, by relative path. */
async function snapshot(root: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const walk = async (rel: string): Promise<void> => {
    const path = join(root, rel);
    const s = await lstat(path);
    if (s.isSymbolicLink()) out.set(rel, { kind: 'symlink', content: await readlink(path) });
    else if (s.isDirectory()) {
      out.set(rel, { kind: 'directory', mode: s.mode & 0o7777, mtime: Math.floor(s.mtimeMs / 1000) });
      for (const name of await readdir(path)) await walk(join(rel, name));
    } else {
      const hash = createHash('sha256').update(await readFile(path)).digest('hex');
      out.set(rel, { kind: 'file', mode: s.mode & 0o7777, content: hash, mtime: Math.floor(s.mtimeMs / 1000) });
    }
  };
  await walk('.');
  return out;
}

const CASES = [
  // 1,500 directories on 4 KiB blocks: past the old abort (~1,000 readdirs).
  { name: 'ext4, 4 KiB blocks, hash-indexed directories (then fs ls and fs rm -r of it)', dirs: 1500, big: 600, mkfs: ['-t', 'ext4', '-b', '4096'], size: '256M', many: true },
  { name: 'ext4 with inline_data directories', dirs: 40, big: 300, mkfs: ['-t', 'ext4', '-O', 'inline_data', '-I', '512'], size: '64M', inline: true },
  { name: 'ext2, 1 KiB blocks', dirs: 40, big: 300, mkfs: ['-t', 'ext2', '-b', '1024'], size: '64M' },
] as const;

describe('fs get of a directory tree', () => {
  for (const c of CASES) {
    it(`extracts the same tree as host debugfs rdump (${c.name})`, async () => {
      const work = join(dir, c.name.replace(/\W+/g, '-'));
      const source = join(work, 'root');
      await mkdir(source, { recursive: true });
      await makeTree(source, c.dirs, c.big);
      const image = join(work, 'fs.img');
      await execa('mke2fs', ['-q', '-F', ...c.mkfs, '-d', source, image, c.size], { env: SBIN_ENV });
      // Hash-index every directory (as a kernel does once a directory outgrows a block).
      await execa('e2fsck', ['-fyD', image], { env: SBIN_ENV, reject: false });
      expect((await hostFsck(image)).exitCode).toBe(0);
      if ('inline' in c) {
        const stat = await execa('debugfs', ['-R', 'stat /tree/d0', image], { env: SBIN_ENV });
        expect(stat.stdout).toMatch(/Type: directory .* Flags: 0x10000000/);
      }

      const ours = join(work, 'ours');
      const got = await runInProcess(['fs', 'get', image, '/tree', ours]);
      expect(got.stderr).toBe('');
      expect(got.code).toBe(0);
      const hostOut = join(work, 'host');
      await mkdir(hostOut);
      const dumped = await execa('debugfs', ['-R', `rdump /tree ${hostOut}`, image], { env: SBIN_ENV });
      expect(dumped.stderr.replace(/^debugfs [^\n]*\n?/, '')).toBe('');

      const [mine, theirs, given] = await Promise.all([snapshot(ours), snapshot(join(hostOut, 'tree')), snapshot(join(source, 'tree'))]);
      // Host debugfs 1.47 dumps an inline-data file as its whole 60-byte i_block ("hi\n" + 57 NULs,
      // an empty file as 60 NULs): there the contents are checked against the tree mke2fs was given.
      if ('inline' in c) for (const [path, node] of theirs) if (node.kind === 'file' && (await lstat(join(source, 'tree', path))).size <= 60) node.content = given.get(path)!.content;
      expect(mine.size).toBe(theirs.size);
      expect(mine.size).toBeGreaterThan(2 * c.dirs + c.big);
      expect(Object.fromEntries(mine)).toEqual(Object.fromEntries(theirs));
      // The host tree the image was made from is what both extracted.
      expect(mine.get('d3/f')).toMatchObject({ mode: 0o700, mtime: BASE_TIME + 6 });
      expect(mine.get('readonly')).toMatchObject({ mode: 0o555 });
      expect((await lstat(join(ours, 'sparse.bin'))).blocks).toBeLessThan(64);
      if (!('many' in c)) return;

      // The other walks over many directories in one session: fs ls and fs rm -r.
      const listed = await runInProcess(['fs', 'ls', image, '/tree']);
      expect(listed.code).toBe(0);
      expect(listed.stdout.split('\n').filter(Boolean)).toHaveLength(c.dirs + 7);
      const removed = await runInProcess(['fs', 'rm', image, '/tree', '-r']);
      expect(removed.stderr).toBe('');
      expect(removed.code).toBe(0);
      const after = await execa('debugfs', ['-R', 'ls -p /', image], { env: SBIN_ENV });
      expect(after.stdout).not.toContain('/tree/');
      expect((await hostFsck(image)).exitCode).toBe(0);
    });
  }
});
