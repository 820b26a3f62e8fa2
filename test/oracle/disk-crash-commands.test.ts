import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasPendingRecord } from '../../src/disk/index.js';
import { runCli } from '../helpers/crash.js';
import { fileState, hostFsck } from '../helpers/kill.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

// kill -9 at each deterministic fault point (DISKWRIGHT_TEST_FAULT, src/io/test-fault.ts: every
// commit step, every atomic-output step, every rename of an output set) of resize (MBR, GPT,
// logical), fsck --fix, template make and instance create. Afterwards: the target is the old or
// the new one by sha256 (the whole file: partition table and filesystem together), host e2fsck -fn
// agrees, a reader refuses in one line naming `diskwright recover` or works, and a writer (the
// same command again) rolls back and ends with exactly the uninterrupted run's result.

const FAKE_TIME = '1700000000';
const SBIN = `${process.env.PATH}:/usr/sbin:/sbin`;
const ENV = { PATH: SBIN, E2FSPROGS_FAKE_TIME: FAKE_TIME, E2FSCK_TIME: FAKE_TIME };
const MiB = 1024 * 1024;
let dir: string;
let tree: string;

async function sh(cmd: string, args: string[], input?: string): Promise<void> {
  await execa(cmd, args, { env: { ...process.env, ...ENV }, ...(input !== undefined ? { input } : {}) });
}
async function mkfsAt(image: string, offset: number, bytes: number, type = 'ext4'): Promise<void> {
  await sh('mke2fs', ['-q', '-F', '-t', type, '-d', tree, '-E', `offset=${offset}`, image, `${bytes / 1024}k`]);
}

/** Runs `items` through `fn`, two at a time (the machine's cores). */
async function pool<T, R>(items: readonly T[], fn: (item: T, index: number) => Promise<R>, width = 2): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!, i);
    }),
  );
  return results;
}

type Step = { n: number; phase: string };

/** The fault points (`N PHASE`) an uninterrupted run of `args` passes; exit 0 or 1 (fsck: fixed). */
async function faultPoints(args: readonly string[], log: string, env: Record<string, string>): Promise<Step[]> {
  rmSync(log, { force: true });
  const result = await runCli(args, { ...env, DISKWRIGHT_TEST_FAULT_LOG: log });
  expect(result.code, result.stderr).toBeLessThan(2);
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => ({ n: Number(line.split(' ')[0]), phase: line.split(' ')[1]! }));
}

/**
 * The fault points to kill at: `every` one, or the first of each phase (plus the listed phases'
 * middle and last), or only those of the listed phases. Keeps the matrix inside the test budget.
 */
function killPoints(steps: readonly Step[], pick: 'every' | { phases?: readonly string[]; spread?: readonly string[] } = {}): number[] {
  if (pick === 'every') return steps.map((s) => s.n);
  const picked = new Set<number>();
  const phases = new Map<string, number[]>();
  for (const s of steps) phases.set(s.phase, [...(phases.get(s.phase) ?? []), s.n]);
  for (const [phase, list] of phases) {
    if (pick.phases && !pick.phases.includes(phase)) continue;
    picked.add(list[0]!);
    if (pick.spread?.includes(phase)) {
      picked.add(list[Math.floor(list.length / 2)]!);
      picked.add(list[list.length - 1]!);
    }
  }
  return [...picked].sort((a, b) => a - b);
}

/** Temp files and records left beside `path`. */
function leftoversBeside(path: string): string[] {
  const name = basename(path);
  return readdirSync(dirname(path)).filter((n) => (n.startsWith(`.${name}.`) && n.endsWith('.tmp')) || n.startsWith(`${name}.diskwright-`));
}

function expectOneLineRefusal(stderr: string): void {
  expect(stderr).toMatch(/interrupted diskwright (write|run).*\[E_NEEDS_RECOVERY\]\n {2}hint: run `diskwright recover /);
  expect(stderr.trim().split('\n')).toHaveLength(2);
}

beforeAll(async () => {
  for (const tool of ['sfdisk', 'mke2fs', 'e2fsck', 'debugfs', 'dumpe2fs']) await requireTool(tool, tool === 'sfdisk' ? 'fdisk' : 'e2fsprogs');
  dir = await tempDir('crash-commands-');
  tree = join(dir, 'tree');
  for (let d = 0; d < 3; d += 1) {
    mkdirSync(join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < 12; f += 1) writeFileSync(join(tree, `d${d}`, `f${f}`), `${d}/${f} `.repeat(60 * (f + 1)));
  }
}, 60_000);

interface InPlace {
  readonly name: string;
  /** Builds the pristine image; returns the filesystem's byte offset. */
  readonly make: (path: string) => Promise<number>;
  readonly args: (image: string) => string[];
  /** A reader to run right after the kill. */
  readonly reader: (image: string) => string[];
  /** Which fault points to kill at (see killPoints). */
  readonly pick: Parameters<typeof killPoints>[1];
}

const inPlace: InPlace[] = [
  {
    name: 'resize --partition of an MBR primary partition',
    make: async (path) => {
      await sh('truncate', ['-s', String(24 * MiB), path]);
      await sh('sfdisk', ['--quiet', path], 'label: dos\nstart=2048, type=83\n');
      await mkfsAt(path, MiB, 23 * MiB);
      return MiB;
    },
    args: (image) => ['resize', image, '--partition', '1', '48M'],
    reader: (image) => ['partitions', image],
    // Every phase of the commit once, the data writes at start, middle and end.
    pick: { spread: ['write'] },
  },
  {
    name: 'resize --partition of a GPT partition',
    make: async (path) => {
      await sh('truncate', ['-s', String(24 * MiB), path]);
      await sh('sfdisk', ['--quiet', path], 'label: gpt\nstart=2048, size=16MiB\n');
      await mkfsAt(path, MiB, 16 * MiB);
      return MiB;
    },
    args: (image) => ['resize', image, '--partition', '1', '48M'],
    reader: (image) => ['info', image, '-p', '1'],
    pick: { phases: ['record-synced', 'write'] },
  },
  {
    name: 'resize --partition of a logical partition',
    make: async (path) => {
      await sh('truncate', ['-s', String(32 * MiB), path]);
      await sh('sfdisk', ['--quiet', path], 'label: dos\nstart=2048, size=8MiB, type=83\nstart=18432, type=5\nstart=20480, type=83\n');
      await mkfsAt(path, 20480 * 512, 32 * MiB - 20480 * 512, 'ext3');
      return 20480 * 512;
    },
    args: (image) => ['resize', image, '--partition', '5', '64M'],
    reader: (image) => ['fs', 'ls', image, '/', '-p', '5'],
    pick: { phases: ['grow', 'flushed'] },
  },
  {
    name: 'fsck --fix of a damaged filesystem',
    make: async (path) => {
      await sh('truncate', ['-s', String(16 * MiB), path]);
      await sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, path]);
      for (const request of ['unlink /d1/f3', 'set_bg 1 free_blocks_count 7', 'set_super_value free_blocks_count 12', 'freeb 300 40']) {
        await sh('debugfs', ['-w', '-R', request, path]);
      }
      return 0;
    },
    args: (image) => ['fsck', image, '--fix'],
    reader: (image) => ['fsck', image],
    pick: { phases: ['record-written', 'write', 'flushed'] },
  },
];

describe('kill -9 at every commit step of the in-place commands (host e2fsck as oracle)', () => {
  it.each(inPlace)('$name: old or new by sha256 at each step; a reader refuses in one line; rerunning it gives the uninterrupted result', { timeout: 240_000 }, async (c) => {
    const work = join(dir, c.name.replace(/\W+/g, '-'));
    mkdirSync(work);
    const pristine = join(work, 'pristine.img');
    const offset = await c.make(pristine);
    const old = await fileState(pristine);
    const oldFsck = (await hostFsck(pristine, offset)).exitCode;
    // Two uninterrupted runs (one logs the fault points): the command is deterministic (fixed
    // clock), so "new" is one hash.
    const reference = join(work, 'reference.img');
    copyFileSync(pristine, reference);
    const done = await runCli(c.args(reference), ENV);
    expect(done.code, done.stderr).toBeLessThan(2);
    expect((await hostFsck(reference, offset)).exitCode).toBe(0);
    copyFileSync(pristine, join(work, 'steps.img'));
    const steps = await faultPoints(c.args(join(work, 'steps.img')), join(work, 'steps.log'), ENV);
    const fresh = [await fileState(reference), await fileState(join(work, 'steps.img'))];
    expect(fresh[0]).toBe(fresh[1]);
    expect(fresh[0]).not.toBe(old);
    expect(steps.map((s) => s.phase)).toEqual(expect.arrayContaining(['record', 'record-written', 'record-synced', 'record-durable', 'write', 'written', 'flushed']));

    const points = killPoints(steps, c.pick);
    const outcomes = await pool(points, async (step) => {
      const image = join(work, `kill-${step}.img`);
      copyFileSync(pristine, image);
      const run = await runCli(c.args(image), { ...ENV, DISKWRIGHT_TEST_FAULT: `${step}:kill` });
      expect(run.killed, `step ${step}: ${run.stderr}`).toBe(true);
      const killed = join(work, `killed-${step}.img`);
      copyFileSync(image, killed);
      for (const extra of leftoversBeside(image).filter((n) => n.endsWith('.diskwright-undo'))) copyFileSync(join(work, extra), `${killed}.diskwright-undo`);
      // A reader: refuses in one line while a record is pending (else it runs), and changes nothing.
      // (A record whose header never reached the file — killed while it was written — is not pending.)
      const pending = hasPendingRecord(image);
      const reader = await runCli(c.reader(image), ENV);
      if (pending) {
        // fsck's failures are e2fsck's operational error (8), never 1 ("errors corrected").
        expect(reader.code).toBe(c.reader(image)[0] === 'fsck' ? 8 : 1);
        expectOneLineRefusal(reader.stderr);
      }
      expect(await fileState(image)).toBe(await fileState(killed));
      // recover: the image is the old or the new one, byte for byte, and host e2fsck agrees.
      const recover = await runCli(['recover', image], ENV);
      expect(recover.code, recover.stderr).toBe(0);
      expect(leftoversBeside(image)).toEqual([]);
      const state = await fileState(image);
      expect([old, fresh[0]], `state after a kill at fault point ${step} (${steps[step - 1]!.phase})`).toContain(state);
      expect((await hostFsck(image, offset)).exitCode).toBe(state === old ? oldFsck : 0);
      // A writer on the killed image (no recover first): rolls back (or keeps a completed commit),
      // then the same command ends with exactly the uninterrupted run's bytes — after a rollback;
      // on the new image it runs once more and leaves it clean.
      const again = await runCli(c.args(killed), ENV);
      expect(again.code, again.stderr).toBeLessThan(2);
      expect(leftoversBeside(killed)).toEqual([]);
      if (state === old) expect(await fileState(killed)).toBe(fresh[0]);
      else expect((await hostFsck(killed, offset)).exitCode).toBe(0);
      rmSync(image);
      rmSync(killed);
      return state === old ? 'old' : 'new';
    });
    // An interrupted commit rolls back, except once every changed block holds its new bytes
    // ('written', 'flushed'): its record then proves the commit complete and the new image stays.
    expect(outcomes).toEqual(points.map((step) => (['written', 'flushed'].includes(steps[step - 1]!.phase) ? 'new' : 'old')));
  });
});

/** `dumpe2fs -h` UUID of a filesystem image. */
async function fsUuid(image: string): Promise<string> {
  const r = await execa('dumpe2fs', ['-h', image], { env: { ...process.env, ...ENV }, reject: false });
  return /^Filesystem UUID:\s+(\S+)/m.exec(r.stdout)?.[1] ?? 'none';
}

/** The file's contents as host debugfs reads them from a filesystem image. */
async function hostCat(image: string, path: string): Promise<string> {
  const r = await execa('debugfs', ['-R', `cat ${path}`, image], { env: { ...process.env, ...ENV }, reject: false });
  return r.stdout;
}

describe('kill -9 at the fault points of template make and instance create', () => {
  it('template make --force over an existing template: template, manifest and kernel files are the old set or the new set, never a mix', { timeout: 240_000 }, async () => {
    const { writeDebianLikeTree, makeDiskFromTree } = await import('../helpers/debian-like.js');
    const work = join(dir, 'template');
    mkdirSync(work);
    const makeDisk = async (name: string): Promise<string> => {
      const root = join(work, `${name}-root`);
      await writeDebianLikeTree(root, { modernNetworking: true });
      const disk = join(work, `${name}.img`);
      await makeDiskFromTree(root, disk, { type: 'ext4' });
      return disk;
    };
    const oldDisk = await makeDisk('old');
    const newDisk = await makeDisk('new');
    const args = (disk: string, out: string): string[] => ['template', 'make', disk, '-p', '1', '-o', out, '--kernel-dir', join(dirname(out), 'kernels'), '--force'];
    // A set's identity: the template's filesystem UUID, the UUID its manifest names, its kernel.
    const pairState = async (out: string): Promise<string> => {
      const manifest = JSON.parse(readFileSync(`${out}.diskwright.json`, 'utf8')) as { filesystem: { uuid: string }; kernel: { kernel: string } };
      return `${await fsUuid(out)}|${manifest.filesystem.uuid}|${await fileState(manifest.kernel.kernel)}`;
    };
    const oldSet = join(work, 'old-set');
    mkdirSync(oldSet);
    const made = await runCli(args(oldDisk, join(oldSet, 'tmpl')), ENV);
    expect(made.code, made.stderr).toBe(0);
    /** A copy of the old set in its own directory (the manifest names that directory's kernels). */
    const setUp = async (slot: string): Promise<string> => {
      const outDir = join(work, slot);
      await execa('cp', ['-a', '--sparse=always', oldSet, outDir]);
      const manifestFile = join(outDir, 'tmpl.diskwright.json');
      writeFileSync(manifestFile, readFileSync(manifestFile, 'utf8').replaceAll(oldSet, outDir));
      return join(outDir, 'tmpl');
    };
    const oldState = await pairState(join(oldSet, 'tmpl'));
    const stepsOut = await setUp('steps');
    const steps = await faultPoints(args(newDisk, stepsOut), join(work, 'steps.log'), ENV);
    const newState = await pairState(stepsOut);
    expect(newState).not.toBe(oldState);
    expect(steps.map((s) => s.phase)).toEqual(expect.arrayContaining(['renames-recorded', 'renamed']));
    const source = await fileState(newDisk);

    const points = killPoints(steps, { spread: ['renamed'] });
    const outcomes = await pool(points, async (step) => {
      const out = await setUp(`kill-${step}`);
      const run = await runCli(args(newDisk, out), { ...ENV, DISKWRIGHT_TEST_FAULT: `${step}:kill` });
      expect(run.killed, `step ${step}: ${run.stderr}`).toBe(true);
      expect(await fileState(newDisk)).toBe(source);
      const pending = existsSync(`${out}.diskwright-renames`);
      // A reader of the template refuses in one line while the set is half renamed.
      const show = await runCli(['template', 'show', out], ENV);
      if (pending) expectOneLineRefusal(show.stderr);
      else expect(show.code, show.stderr).toBe(0);
      let writerCopy: string | undefined;
      if (pending) {
        writerCopy = join(work, `writer-${step}`);
        await execa('cp', ['-a', '--sparse=always', dirname(out), writerCopy]);
      }
      const recover = await runCli(['recover', out], ENV);
      expect(recover.code, recover.stderr).toBe(0);
      const state = await pairState(out);
      expect([oldState, newState], `after a kill at fault point ${step} (${steps[step - 1]!.phase})`).toContain(state);
      expect((await hostFsck(out)).exitCode).toBe(0);
      if (writerCopy) {
        // The next template make (a writer of the set) completes it first, then succeeds.
        const copyOut = join(writerCopy, 'tmpl');
        const again = await runCli(args(newDisk, copyOut), ENV);
        expect(again.code, again.stderr).toBe(0);
        expect(await pairState(copyOut)).toBe(newState.replaceAll(dirname(out), writerCopy));
        expect([...leftoversBeside(copyOut), ...leftoversBeside(`${copyOut}.diskwright.json`)]).toEqual([]);
        rmSync(writerCopy, { recursive: true });
      }
      rmSync(dirname(out), { recursive: true });
      return state === oldState ? 'old' : 'new';
    });
    // Kills before the rename record keep the old set, kills after it complete the new one.
    expect(new Set(outcomes)).toEqual(new Set(['old', 'new']));
  });

  it('instance create --disk-only: the disk is absent or complete and clean, the template untouched, and the next create succeeds', { timeout: 240_000 }, async () => {
    const { makeTemplate } = await import('./instance-helpers.js');
    const work = join(dir, 'instance');
    mkdirSync(work);
    const { template } = await makeTemplate(join(work, 'tmpl'), { size: '16M' });
    const templateState = await fileState(template);
    const env = { ...ENV, XDG_CONFIG_HOME: join(work, 'xdg') };
    const args = (images: string): string[] => ['instance', 'create', '10.0.0.5', 'web1', '--template', template, '--images-dir', images, '--disk', '24M', '--disk-only'];
    const imagesDir = (name: string): string => {
      const path = join(work, name);
      mkdirSync(path, { recursive: true });
      return path;
    };
    // The rendered files stamp the clock's time, so "complete" is: clean, full size, rendered.
    const rendered = async (disk: string): Promise<string> => `${(await fileState(disk)).split(':')[0]}|${await hostCat(disk, '/etc/hostname')}|${await hostCat(disk, '/etc/network/interfaces')}`;
    const steps = await faultPoints(args(imagesDir('steps')), join(work, 'steps.log'), env);
    const fresh = await rendered(join(work, 'steps', 'web1-disk0'));
    expect(fresh).toMatch(/web1/);
    expect(fresh).not.toMatch(/-TMPL/);
    expect(steps.map((s) => s.phase)).toEqual(expect.arrayContaining(['output-synced', 'output-renamed']));

    let rerun = false;
    const outcomes = await pool(killPoints(steps), async (step) => {
      const images = imagesDir(`kill-${step}`);
      const run = await runCli(args(images), { ...env, DISKWRIGHT_TEST_FAULT: `${step}:kill` });
      expect(run.killed, `step ${step}: ${run.stderr}`).toBe(true);
      expect(await fileState(template)).toBe(templateState);
      const disk = join(images, 'web1-disk0');
      const state = await fileState(disk);
      if (state !== 'absent') {
        expect((await hostFsck(disk)).exitCode, `after a kill at fault point ${step} (${steps[step - 1]!.phase})`).toBe(0);
        expect(await rendered(disk)).toBe(fresh);
      } else if (!rerun) {
        rerun = true;
        // The next create of the same host succeeds and removes the killed run's temp files.
        const again = await runCli(args(images), env);
        expect(again.code, again.stderr).toBe(0);
        expect(await rendered(disk)).toBe(fresh);
        expect(leftoversBeside(disk)).toEqual([]);
      }
      rmSync(images, { recursive: true });
      return state === 'absent' ? 'absent' : 'made';
    });
    expect(new Set(outcomes)).toEqual(new Set(['absent', 'made']));
  });
});
