import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { commitSteps, enospcAtStep, killAtStep, leftovers, runCli, type CrashCase } from '../helpers/crash.js';
import { tempDir } from '../helpers/tmp.js';
import { hostFsck, hostLs, makeExtImage, SBIN_ENV } from '../unit/ext/ext-images.js';

const P1 = 1024 * 1024;

/** Host debugfs cat as a hash, "absent" when the path does not exist. */
async function hostHash(device: string, path: string): Promise<string> {
  const r = await execa('debugfs', ['-R', `cat "${path}"`, device], { env: SBIN_ENV, encoding: 'buffer', reject: false, stripFinalNewline: false });
  if (/File not found/.test(Buffer.from(r.stderr).toString())) return 'absent';
  return createHash('sha256').update(Buffer.from(r.stdout)).digest('hex');
}

/** An MBR disk with partition 1 (type 83, from sector 2048) holding an ext4 made by host mke2fs. */
async function makePartitionedDisk(path: string): Promise<void> {
  await execa('truncate', ['-s', '64M', path]);
  await execa('sfdisk', ['--quiet', path], { input: 'label: dos\nstart=2048, type=83\n', env: SBIN_ENV });
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', `offset=${P1}`, path, '60M'], { env: SBIN_ENV });
}

function fileCase(pristine: string, source: string, dest: string, partition: boolean): CrashCase {
  const device = (image: string): string => (partition ? `${image}?offset=${P1}` : image);
  return {
    pristine,
    args: (image) => ['fs', 'put', image, source, dest, ...(partition ? ['--partition', '1'] : [])],
    probe: (image) => hostHash(device(image), dest),
    fsck: async (image) => (await hostFsck(device(image))).exitCode,
    reader: (image) => ['fs', 'ls', image, '/', ...(partition ? ['--partition', '1'] : [])],
  };
}

/** The first fault point of each phase a run passes. */
function firstOfEachPhase(steps: readonly { n: number; phase: string }[]): number[] {
  const first = new Map<string, number>();
  for (const s of steps) if (!first.has(s.phase)) first.set(s.phase, s.n);
  return [...first.values()].sort((a, b) => a - b);
}

async function expectedStates(c: CrashCase, work: string): Promise<{ old: string; new: string }> {
  copyFileSync(c.pristine, work);
  const old = await c.probe(work);
  const done = await runCli(c.args(work));
  expect(done.code, done.stderr).toBe(0);
  return { old, new: await c.probe(work) };
}

describe('crash safety of in-place writes (kill -9 and ENOSPC at commit steps; host e2fsck and debugfs as oracles)', async () => {
  const dir = await tempDir();
  const small = join(dir, 'small.bin');
  writeFileSync(small, randomBytes(300 * 1024));
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  for (let i = 0; i < 24; i += 1) writeFileSync(join(tree, `f${i}`), randomBytes(1000 + i * 3000));
  const big = join(dir, 'big-put.bin');
  // ≥ 4 MiB into a whole-image filesystem: the debugfs bulk path, on the same overlay and commit.
  writeFileSync(big, randomBytes(6 * 1024 * 1024));
  const whole = join(dir, 'whole.img');
  await makeExtImage(whole, 'ext4', '48M');
  const disk = join(dir, 'disk.img');
  await makePartitionedDisk(disk);
  // A directory to remove, put there by a clean run.
  const withDir = join(dir, 'with-dir.img');
  copyFileSync(disk, withDir);
  expect((await runCli(['fs', 'put', withDir, tree, '/victim', '--partition', '1'])).code).toBe(0);

  const cases: [string, CrashCase][] = [
    ['fs put of a 6 MiB file into a bare filesystem (bulk path)', fileCase(whole, big, '/big.bin', false)],
    ['fs put of a file into partition 1', fileCase(disk, small, '/etc-small.bin', true)],
    [
      'fs put of a tree into partition 1',
      {
        pristine: disk,
        args: (image) => ['fs', 'put', image, tree, '/tree', '--partition', '1'],
        probe: async (image) => `${(await hostLs(`${image}?offset=${P1}`, '/tree')).join(',')}|${await hostHash(`${image}?offset=${P1}`, '/tree/f23')}`,
        fsck: async (image) => (await hostFsck(`${image}?offset=${P1}`)).exitCode,
        reader: (image) => ['partitions', image],
      },
    ],
    [
      'fs rm -r of a directory in partition 1',
      {
        pristine: withDir,
        args: (image) => ['fs', 'rm', image, '/victim', '--recursive', '--partition', '1'],
        probe: async (image) => (await hostLs(`${image}?offset=${P1}`, '/victim')).join(','),
        fsck: async (image) => (await hostFsck(`${image}?offset=${P1}`)).exitCode,
        reader: (image) => ['fs', 'cat', image, '/victim/f3', '--partition', '1'],
      },
    ],
  ];

  // The partition-file case runs under ENOSPC below; the kill cases cover the other three.
  it.each([cases[0]!, cases[2]!, cases[3]!])('%s: after a kill at any commit step the image is the old one (the new one once every block is written, unless file data went in place), and the next command sees it consistently', { timeout: 180_000 }, async (name, c) => {
    const work = join(dir, `kill-${name.replace(/\W+/g, '-')}.img`);
    const expected = await expectedStates(c, work);
    expect(expected.new).not.toBe(expected.old);
    copyFileSync(c.pristine, work);
    const steps = await commitSteps(c.args(work), join(dir, 'steps.log'));
    expect(steps.map((s) => s.phase)).toEqual(expect.arrayContaining(['record', 'record-durable', 'write', 'written']));
    // Each phase once (its first step) and the last data write; two kills at a time.
    const points = [...new Set([...firstOfEachPhase(steps), steps.filter((s) => s.phase === 'write').at(-1)!.n])];
    // A kill once every changed block holds its new bytes ('written', 'flushed') leaves a record that
    // proves the commit complete: the new image stays. Not on the bulk path: its file data went in
    // place, outside the record's block list, so that commit rolls back until the record is gone.
    const inPlace = name.includes('bulk path');
    const phaseOf = new Map(steps.map((s) => [s.n, s.phase]));
    const want = (step: number): string => (!inPlace && ['written', 'flushed'].includes(phaseOf.get(step)!) ? 'new' : 'old');
    for (let i = 0; i < points.length; i += 2) {
      const batch = points.slice(i, i + 2);
      const states = await Promise.all(batch.map((step) => killAtStep(c, `${work}-${step}`, step, expected)));
      expect(states, `kills at steps ${batch.map((n) => `${n} ${phaseOf.get(n)}`).join(', ')}`).toEqual(batch.map(want));
    }
  });

  it('ENOSPC at each kind of commit step and at random ones: one-line error, the image is the old one and clean, and the next write succeeds', { timeout: 180_000 }, async () => {
    const c = cases[1]![1];
    const work = join(dir, 'enospc.img');
    const expected = await expectedStates(c, work);
    copyFileSync(c.pristine, work);
    const steps = await commitSteps(c.args(work), join(dir, 'steps-enospc.log'));
    const writes = steps.filter((s) => s.phase === 'write');
    // Every phase once (record saving, its sync and rename, grow, data writes, the final flush),
    // the last data write, and two steps drawn from a seeded generator.
    let seed = 0x9e3779b9;
    const random = (): number => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    const drawn = [0, 1].map(() => steps[Math.floor(random() * steps.length)]!.n);
    const points = [...new Set([...firstOfEachPhase(steps), writes.at(-1)!.n, ...drawn])];
    for (let i = 0; i < points.length; i += 2) {
      await Promise.all(points.slice(i, i + 2).map((step) => enospcAtStep(c, `${work}-${step}`, step, expected)));
    }
  });

  // A real disk full: root mounts a small tmpfs (CI runs as root).
  it.runIf(process.getuid?.() === 0)('a real ENOSPC on a full tmpfs mid-commit is rolled back: the image is the old one and clean, and a write succeeds once there is space', async () => {
    const mount = join(dir, 'tmpfs');
    mkdirSync(mount);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount]);
    try {
      const work = join(mount, 'disk.img');
      // cp keeps the holes (Node's copyFile fills them).
      await execa('cp', ['--sparse=always', disk, work]);
      const big = join(dir, 'big.bin');
      writeFileSync(big, randomBytes(6 * 1024 * 1024));
      // Leave about 2 MiB free: the record fits, the data does not.
      const { stdout } = await execa('df', ['-B1', '--output=avail', mount]);
      const avail = Number(stdout.trim().split('\n')[1]);
      const filler = join(mount, 'filler');
      await execa('fallocate', ['-l', String(avail - 2 * 1024 * 1024), filler]);
      const before = await hostHash(`${work}?offset=${P1}`, '/big.bin');
      const run = await runCli(['fs', 'put', work, big, '/big.bin', '--partition', '1']);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/ENOSPC.*nothing was changed \(the commit was rolled back\)/);
      expect(run.stderr.trim().split('\n')).toHaveLength(2);
      expect(leftovers(work)).toEqual([]);
      expect((await hostFsck(`${work}?offset=${P1}`)).exitCode).toBe(0);
      expect(await hostHash(`${work}?offset=${P1}`, '/big.bin')).toBe(before);
      await execa('rm', ['-f', filler]);
      expect((await runCli(['fs', 'put', work, big, '/big.bin', '--partition', '1'])).code).toBe(0);
      expect((await hostFsck(`${work}?offset=${P1}`)).exitCode).toBe(0);
    } finally {
      await execa('umount', [mount]);
    }
  });

  it('N processes putting different files into one image at once all land (--wait), and host e2fsck is clean', async () => {
    const work = join(dir, 'concurrent.img');
    copyFileSync(disk, work);
    const files = Array.from({ length: 4 }, (_, i) => {
      const path = join(dir, `c${i}.bin`);
      writeFileSync(path, randomBytes(64 * 1024 + i * 50_000));
      return path;
    });
    const runs = await Promise.all(files.map((f, i) => runCli(['fs', 'put', work, f, `/c${i}.bin`, '--partition', '1', '--wait'])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    for (const [i, f] of files.entries()) {
      expect(await hostHash(`${work}?offset=${P1}`, `/c${i}.bin`)).toBe(createHash('sha256').update(await import('node:fs').then((m) => m.readFileSync(f))).digest('hex'));
    }
    expect((await hostFsck(`${work}?offset=${P1}`)).exitCode).toBe(0);
    // Without --wait a second writer is refused at once with the holder's pid, and loses nothing.
    const [first, second] = await Promise.all([
      runCli(['fs', 'put', work, tree, '/t1', '--partition', '1']),
      runCli(['fs', 'put', work, tree, '/t2', '--partition', '1']),
    ]);
    const codes = [first.code, second.code];
    expect(codes).toContain(0);
    for (const r of [first, second]) if (r.code !== 0) expect(r.stderr).toMatch(/is being changed by another diskwright process \(pid \d+\) \[E_LOCKED\]/);
    expect((await hostFsck(`${work}?offset=${P1}`)).exitCode).toBe(0);
    expect(leftovers(work)).toEqual([]);
  });
});
