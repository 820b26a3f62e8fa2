import { mkdir, open, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath, runBin } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { makeDiskFromTree } from '../helpers/debian-like.js';
import { makeTemplate } from '../oracle/instance-helpers.js';

// Ctrl-C on every long command: each runs on an input that takes well over 3 s, gets SIGINT once it
// has reported a step (--json), and must print one line naming diskwright's step and what it left,
// exit 130, leave its image byte-identical (qemu-img compare against a sparse copy: the inputs are
// tens of GiB of holes, too slow to sha256) and no temp file.
// Timing: the interrupt line is printed before the clean-up (errors.ts reportAbort) and must come
// within 1 s of the signal, the exit within 2 s. On a loaded 2-core CI machine (load ~20) a process
// may wait that long for a core alone: each bound is widened by what a no-op node process, signalled
// at the same moment, takes to print its line (measured beside every run, so load cannot hide a slow
// answer and cannot fail a prompt one). Measured answers: 0.002–0.15 s to the line.
const REPORT_WITHIN_MS = 1000;
const EXIT_WITHIN_MS = 2000;

let dir: string;
/** A 64 GiB ext2 (no uninit_bg: e2fsck reads every inode table, resize2fs extends them all). */
let big: string;
let bigCopy: string;
/**
 * A host tree: a 512 MiB file of data and 300 small files. Data, not holes: holes are skipped now
 * (fs put punches them, fs get writes them as holes), so a file of holes copies in no time.
 */
let payload: string;
/** An ext4 image holding `payload` (made by host mke2fs -d). */
let filled: string;
let filledCopy: string;

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  await requireTool('mke2fs', 'e2fsprogs');
  dir = await tempDir();
  payload = join(dir, 'payload');
  await mkdir(join(payload, 'etc'), { recursive: true });
  const data = await open(join(payload, 'data.bin'), 'w');
  for (let i = 0; i < 64; i++) await data.write(Buffer.alloc(8 << 20, (i % 255) + 1));
  await data.close();
  for (let i = 0; i < 300; i++) await writeFile(join(payload, 'etc', `f${i}`), `file ${i}\n`);
  filled = join(dir, 'filled.ext4');
  await writeFile(filled, '');
  await truncate(filled, 8 * 2 ** 30);
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', payload, filled]);
  filledCopy = join(dir, 'filled.orig');
  await execa('cp', ['--sparse=always', filled, filledCopy]);
  big = join(dir, 'big.ext2');
  const made = await runBin(['mkfs', big, '--type', 'ext2', '--size', '64G']);
  expect(made.code, made.stderr).toBe(0);
  bigCopy = join(dir, 'big.orig');
  await execa('cp', ['--sparse=always', big, bigCopy]);
}, 60_000);

const trees = new Map<number, string>();
/** `count` files of 4 MiB (40: 160 MiB of data, a commit that writes them takes 0.3–2 s). */
async function manyFiles(count = 40): Promise<string> {
  const known = trees.get(count);
  if (known) return known;
  const made = join(dir, `many-${count}`);
  await mkdir(made);
  for (let i = 0; i < count; i++) await writeFile(join(made, `f${i}`), Buffer.alloc(4 << 20, i + 1));
  trees.set(count, made);
  return made;
}

interface Interrupted {
  readonly code: number | undefined;
  readonly stderr: string;
  /** Signal → the error line on stderr. */
  readonly reportMs: number;
  /** Signal → exit. */
  readonly exitMs: number;
  /** Signal → the line of a no-op node process signalled at the same moment (the load's share). */
  readonly baselineMs: number;
}

/** A node process that only answers SIGINT with a line: the scheduling delay of the moment. */
const BASELINE = "process.on('SIGINT', () => { process.stderr.write('interrupted\\n'); process.exit(130); }); setInterval(() => {}, 1000); process.stderr.write('ready\\n');";

/** Runs `diskwright ARGS --json`, sends SIGINT when a stderr line matches `ready`, and times the end. */
async function interrupt(args: readonly string[], ready: RegExp, options: { env?: NodeJS.ProcessEnv; plain?: boolean; signal?: 'SIGINT' | 'SIGTERM' } = {}): Promise<Interrupted> {
  const baseline = execa(process.execPath, ['-e', BASELINE], { reject: false });
  let baselineOut = '';
  let baselineAt: number | undefined;
  await new Promise<void>((resolve) => {
    baseline.stderr!.on('data', (chunk: Buffer) => {
      baselineOut += chunk.toString();
      if (baselineOut.includes('ready')) resolve();
      if (baselineAt === undefined && baselineOut.includes('interrupted')) baselineAt = performance.now();
    });
  });
  // plain: no --json (fs cat streams bytes), `ready` is matched against stdout's first bytes.
  const child = execa(process.execPath, [binPath, ...args, ...(options.plain ? [] : ['--json'])], { reject: false, buffer: { stdout: !options.plain }, ...(options.env ? { env: options.env } : {}) });
  let stderr = '';
  let signalled: number | undefined;
  let reported: number | undefined;
  const fire = (): void => {
    signalled = performance.now();
    child.kill(options.signal ?? 'SIGINT');
    baseline.kill('SIGINT');
  };
  if (options.plain) child.stdout!.on('data', (chunk: Buffer) => signalled === undefined && ready.test(chunk.subarray(0, 64).toString('latin1')) && fire());
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!options.plain && signalled === undefined && ready.test(stderr)) fire();
    if (signalled !== undefined && reported === undefined && stderr.includes(options.plain ? 'interrupted' : '"error"')) reported = performance.now();
  });
  const result = await child;
  const exited = performance.now();
  if (signalled === undefined) baseline.kill('SIGKILL');
  await baseline;
  expect(signalled, `never saw ${ready} in:\n${stderr}`).toBeDefined();
  // DISKWRIGHT_INTERRUPT_TIMES=1: the figures of docs/json.md's table.
  if (process.env.DISKWRIGHT_INTERRUPT_TIMES) console.log(JSON.stringify({ args: args.slice(0, 2), report: Math.round(reported! - signalled!), exit: Math.round(exited - signalled!), baseline: Math.round((baselineAt ?? exited) - signalled!) }));
  return {
    code: result.exitCode,
    stderr,
    reportMs: (reported ?? exited) - signalled!,
    exitMs: exited - signalled!,
    baselineMs: (baselineAt ?? exited) - signalled!,
  };
}

/** The one error line an interrupted --json run prints, and nothing after it. */
function errorLine(stderr: string): { code: string; message: string } {
  const lines = stderr.split('\n').filter((l) => l !== '');
  const errors = lines.filter((l) => l.startsWith('{"error"'));
  expect(errors, stderr).toHaveLength(1);
  expect(lines.at(-1), 'a line after the error line').toBe(errors[0]);
  return (JSON.parse(errors[0]!) as { error: { code: string; message: string } }).error;
}

/** Stopped in time; exit 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports it. */
function expectPrompt(run: Interrupted, exitCode = 130): void {
  expect(run.code, run.stderr).toBe(exitCode);
  expect(run.reportMs, `line after ${Math.round(run.reportMs)} ms (no-op baseline ${Math.round(run.baselineMs)} ms)`).toBeLessThanOrEqual(REPORT_WITHIN_MS + run.baselineMs);
  expect(run.exitMs, `exit after ${Math.round(run.exitMs)} ms (no-op baseline ${Math.round(run.baselineMs)} ms)`).toBeLessThanOrEqual(EXIT_WITHIN_MS + run.baselineMs);
}

async function expectUnchanged(image: string, copy: string): Promise<void> {
  expect((await stat(image)).size).toBe((await stat(copy)).size);
  const compared = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copy, image], { reject: false });
  expect(compared.exitCode, compared.stdout + compared.stderr).toBe(0);
}

/** A new directory `name` holding a sparse copy of `filled` named `file` (for a test that changes it). */
async function filledCopyIn(name: string, file: string): Promise<{ work: string; image: string }> {
  const work = join(dir, name);
  await mkdir(work);
  const image = join(work, file);
  await execa('cp', ['--sparse=always', filled, image]);
  return { work, image };
}

async function leftovers(where = dir): Promise<string[]> {
  return (await readdir(where)).filter((name) => name.startsWith('.') || name.includes('.tmp'));
}

const ANY_STEP = /"event":"step","step":"pass 1 \([a-z ,]+\)","phase":"start"/;

describe('Ctrl-C', () => {
  it('fsck: stops during pass 1 within a second, names the pass, image unchanged', async () => {
    const run = await interrupt(['fsck', big], ANY_STEP);
    expectPrompt(run);
    expect(errorLine(run.stderr)).toEqual({ code: 'E_ABORTED', message: `fsck interrupted during pass 1 (checking inodes, blocks, and sizes); ${big} unchanged`, hint: expect.any(String) });
    expect(run.stderr).not.toMatch(/e2fsck|worker|debugfs/);
    await expectUnchanged(big, bigCopy);
    expect(await leftovers()).toEqual([]);
  }, 60_000);

  it('fsck --fix: stops during a pass, rolls nothing forward, image unchanged', async () => {
    const run = await interrupt(['fsck', '--fix', big], ANY_STEP);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`fsck interrupted during pass 1 (checking inodes, blocks, and sizes); ${big} unchanged`);
    await expectUnchanged(big, bigCopy);
    expect(await leftovers()).toEqual([]);
  }, 60_000);

  it('resize: stops while resize2fs extends the inode tables; size and bytes as before', async () => {
    const run = await interrupt(['resize', big, '256G'], /"step":"pass 1 \(extending the inode table\)","phase":"start"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`resize interrupted during pass 1 (extending the inode table); ${big} unchanged`);
    expect(run.stderr).not.toMatch(/resize2fs|worker/);
    await expectUnchanged(big, bigCopy);
    expect(await leftovers()).toEqual([]);
  }, 60_000);

  it('mkfs --from: stops during the fill, no image and no temp file left', async () => {
    const image = join(dir, 'made.img');
    const run = await interrupt(['mkfs', image, '--size', '8G', '--from', payload], /"event":"progress","step":"fill"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`mkfs interrupted during fill; ${image} not written`);
    expect(run.stderr).not.toMatch(/mke2fs|worker/);
    await expect(stat(image)).rejects.toThrow();
    expect(await leftovers()).toEqual([]);
  }, 60_000);

  it('fs put of a large file: stops during the copy, image unchanged', async () => {
    const run = await interrupt(['fs', 'put', filled, join(payload, 'data.bin'), '/copy.bin'], /"event":"progress","step":"put \/copy\.bin"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`fs put interrupted during put /copy.bin; ${filled} unchanged`);
    expect(run.stderr).not.toMatch(/debugfs|worker/);
    await expectUnchanged(filled, filledCopy);
    expect(await leftovers()).toEqual([]);
  }, 60_000);

  it('fs put of a tree (the bulk path): stops during the copy, image unchanged', async () => {
    const run = await interrupt(['fs', 'put', filled, payload, '/tree'], /"event":"progress","step":"put \/tree"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`fs put interrupted during put /tree; ${filled} unchanged`);
    expect(run.stderr).not.toMatch(/debugfs|worker/);
    await expectUnchanged(filled, filledCopy);
    expect(await leftovers()).toEqual([]);
  }, 60_000);

  it('fs put of a tree: stops during the commit itself, rolls it back, image unchanged', async () => {
    // 40 files of 4 MiB go through the overlay: the commit writes ~160 MiB (0.3–2 s), long after
    // the signal, which comes as soon as the commit step starts.
    const many = await manyFiles();
    const run = await interrupt(['fs', 'put', filled, many, '/many'], /"step":"commit","phase":"start"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`fs put interrupted during commit; ${filled} unchanged`);
    await expectUnchanged(filled, filledCopy);
    expect(await leftovers()).toEqual([]);
  }, 60_000);

  it('mkfs -p: stops while the made filesystem is committed into the partition, disk unchanged', async () => {
    const work = join(dir, 'mkfsp');
    await mkdir(work);
    const disk = join(work, 'disk.img');
    expect((await runBin(['create', disk, '--size', '384M'])).code).toBe(0);
    await writeFile(join(work, 'layout'), 'label: dos\n,+,L\n');
    expect((await runBin(['partition', disk, join(work, 'layout')])).code).toBe(0);
    const diskCopy = join(work, 'disk.orig');
    await execa('cp', ['--sparse=always', disk, diskCopy]);
    // The commit saves the old bytes of the whole partition and writes 64 MiB (0.3–3 s); a small
    // partition keeps the temp files an interrupt removes small (their unlink is part of the time).
    const run = await interrupt(['mkfs', disk, '-p', '1', '--from', await manyFiles(16)], /"step":"commit","phase":"start"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`mkfs interrupted during commit; ${disk} unchanged`);
    await expectUnchanged(disk, diskCopy);
    expect((await readdir(work)).sort()).toEqual(['disk.img', 'disk.orig', 'layout']);
  }, 60_000);

  it('disk build: stops during the fill of a partition, no disk and no temp file left', async () => {
    const work = join(dir, 'build');
    await mkdir(work);
    await writeFile(join(work, 'layout'), 'label: dos\n,+,L\n');
    const out = join(work, 'disk.img');
    const run = await interrupt(['disk', 'build', out, '--size', '1G', '--layout', join(work, 'layout'), '--fs', `1=ext4:${await manyFiles(16)}`], /"event":"progress","step":"\[2\/2\] partition 1: ext4 from /);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toMatch(new RegExp(`^disk build interrupted during \\[2/2\\] partition 1: ext4 from \\S+; no ${out.replace(/[.]/g, '\\.')} written$`));
    expect(await readdir(work)).toEqual(['layout']);
  }, 60_000);

  it('fs get of a large file and of a tree: stops during the copy, no output and no temp left', async () => {
    const out = join(dir, 'out');
    await mkdir(out);
    for (const [path, name] of [['/data.bin', 'data.bin'], ['/', 'tree']] as const) {
      const dest = join(out, name);
      const run = await interrupt(['fs', 'get', filled, path, dest], new RegExp(`"event":"progress","step":"get ${path.replace(/[.]/g, '\\.')}"`));
      expectPrompt(run);
      expect(errorLine(run.stderr).message).toBe(`fs get interrupted during get ${path}; no ${dest} written, ${filled} unchanged`);
      expect(await readdir(out)).toEqual([]);
    }
    await expectUnchanged(filled, filledCopy);
  }, 60_000);

  it('template make: stops during the partition copy, no template, manifest or temp left, disk unchanged', async () => {
    const work = join(dir, 'tmpl');
    const tree = join(work, 'tree');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc/hostname'), 'debian\n');
    await writeFile(join(tree, 'blob'), Buffer.alloc(128 << 20, 0x5a));
    const disk = join(work, 'disk.img');
    await makeDiskFromTree(tree, disk, { type: 'ext4', fsMiB: 200 });
    const diskCopy = join(work, 'disk.orig');
    await execa('cp', ['--sparse=always', disk, diskCopy]);
    const output = join(work, 'out-tmpl');
    const run = await interrupt(['template', 'make', disk, '--partition', '1', '-o', output], /"step":"extract p1","phase":"start"/);
    expectPrompt(run);
    // The copy is ~0.3 s unloaded: on a busy machine the signal may land in the step after it.
    expect(errorLine(run.stderr).message).toMatch(/^template make interrupted during (extract p1|operation [a-z-]+|commit); no \S+ written, \S+ unchanged$/);
    expect(errorLine(run.stderr).message).toContain(`no ${output} written, ${disk} unchanged`);
    await expectUnchanged(disk, diskCopy);
    expect((await readdir(work)).sort()).toEqual(['disk.img', 'disk.orig', 'tree']);
  }, 60_000);

  it('instance create: stops while the disk is resized, no disk or temp left, template unchanged', async () => {
    const work = join(dir, 'inst');
    const images = join(work, 'images');
    await mkdir(images, { recursive: true });
    const { template } = await makeTemplate(work, { size: '32M' });
    const templateCopy = join(work, 'template.orig');
    await execa('cp', ['--sparse=always', template, templateCopy]);
    const env = { ...process.env, XDG_CONFIG_HOME: join(work, 'xdg') };
    // A 64 GiB disk from a 32 MiB ext3: resize2fs adds ~500 block groups (seconds).
    const run = await interrupt(
      ['instance', 'create', '192.168.1.197', 'web1', '--template', template, '--images-dir', images, '--disk', '64G', '--disk-only'],
      /"host":"web1","step":"resize","phase":"start"/,
      { env },
    );
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`instance create interrupted during resize of web1; no ${join(images, 'web1-disk0')} written, ${template} unchanged`);
    expect(run.stderr).not.toMatch(/resize2fs|e2fsck|worker/);
    await expectUnchanged(template, templateCopy);
    expect(await readdir(images)).toEqual([]);
  }, 60_000);

  it('convert raw → qcow2 and qcow2 → raw: stops during the copy, no output and no temp left, input unchanged', async () => {
    const work = join(dir, 'convert');
    await mkdir(work);
    // The qcow2 input for the second direction, made by qemu-img (512 MiB of data in 8 GiB).
    const qcow2 = join(work, 'filled.qcow2');
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', filled, qcow2]);
    for (const [input, format, output] of [[filled, 'qcow2', join(work, 'out.qcow2')], [qcow2, 'raw', join(work, 'out.raw')]] as const) {
      const run = await interrupt(['convert', input, output, '-O', format], new RegExp(`"event":"progress","step":"convert ${format}"`));
      expectPrompt(run);
      expect(errorLine(run.stderr).message).toBe(`convert interrupted during convert ${format}; no ${output} written, ${input} unchanged`);
      expect((await readdir(work)).sort()).toEqual(['filled.qcow2']);
    }
    // SIGTERM (a service manager, `timeout`) stops it the same way and exits 143, not 130.
    const output = join(work, 'term.qcow2');
    const run = await interrupt(['convert', filled, output, '-O', 'qcow2'], /"event":"progress","step":"convert qcow2"/, { signal: 'SIGTERM' });
    expectPrompt(run, 143);
    expect(errorLine(run.stderr).message).toBe(`convert interrupted during convert qcow2; no ${output} written, ${filled} unchanged`);
    expect((await readdir(work)).sort()).toEqual(['filled.qcow2']);
    await expectUnchanged(filled, filledCopy);
  }, 90_000);

  it('extract: stops during the partition copy, no output and no temp left, disk unchanged', async () => {
    const work = join(dir, 'extract');
    await mkdir(work);
    const disk = join(work, 'disk.img');
    await makeDiskFromTree(payload, disk, { type: 'ext4', fsMiB: 700 });
    const diskCopy = join(work, 'disk.orig');
    await execa('cp', ['--sparse=always', disk, diskCopy]);
    const output = join(work, 'p1.img');
    const run = await interrupt(['extract', disk, '--partition', '1', '-o', output], /"event":"progress"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toMatch(new RegExp(`^extract interrupted during .+; no ${output.replace(/[.]/g, '\\.')} written, ${disk.replace(/[.]/g, '\\.')} unchanged$`));
    await expectUnchanged(disk, diskCopy);
    expect((await readdir(work)).sort()).toEqual(['disk.img', 'disk.orig']);
  }, 60_000);

  it('kernel: stops while it copies a large initrd out, no kernel, initrd or temp left, image unchanged', async () => {
    // The payload's 512 MiB file is the initrd (a symlink to it: the copy follows it).
    const { work, image } = await filledCopyIn('kernel', 'boot.ext4');
    await writeFile(join(work, 'vmlinuz'), Buffer.alloc(1 << 20, 0x4b));
    await writeFile(join(work, 'script'), `mkdir /boot\nput ${join(work, 'vmlinuz')} /boot/vmlinuz-6.1.0-13-amd64\nln /data.bin /boot/initrd.img-6.1.0-13-amd64\n`);
    const made = await runBin(['fs', 'batch', image, join(work, 'script')]);
    expect(made.code, made.stderr).toBe(0);
    const imageCopy = join(work, 'boot.orig');
    await execa('cp', ['--sparse=always', image, imageCopy]);
    const out = join(work, 'out');
    const run = await interrupt(['kernel', image, '-o', out], /"event":"progress","step":"copy \/boot\/initrd\.img-6\.1\.0-13-amd64"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`kernel interrupted during copy /boot/initrd.img-6.1.0-13-amd64; no kernel written to ${out}, ${image} unchanged`);
    expect(run.stderr).not.toMatch(/debugfs|worker|ext2fs/);
    await expectUnchanged(image, imageCopy);
    expect((await readdir(work)).sort()).toEqual(['boot.ext4', 'boot.orig', 'script', 'vmlinuz']);
    // 1.1 GiB of copies: the shared disk ran full with them left until the end of the run.
    await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('fs batch: stops while a line runs, names the line, image unchanged', async () => {
    const { work, image } = await filledCopyIn('batch', 'image.ext4');
    const script = join(work, 'edits.txt');
    // Line 1 writes 512 MiB (seconds): the signal comes as the batch reports its first line.
    await writeFile(script, `put ${join(payload, 'data.bin')} /copy.bin\nmkdir /batch\nput ${join(payload, 'etc')} /batch/etc\n`);
    const run = await interrupt(['fs', 'batch', image, script], /"event":"progress","step":"batch [^"]+","bytes":0,/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`fs batch interrupted during ${script}:1 put; ${image} unchanged`);
    expect(run.stderr).not.toMatch(/debugfs|worker/);
    await expectUnchanged(image, filled);
    expect((await readdir(work)).sort()).toEqual(['edits.txt', 'image.ext4']);
    await rm(work, { recursive: true, force: true });
  }, 60_000);
  it('fs cat of a large file: stops while the bytes stream out, image unchanged', async () => {
    // The payload's 512 MiB file is bytes 0x01 first: the signal comes with the first chunk.
    const run = await interrupt(['fs', 'cat', filled, '/data.bin'], /^\x01/, { plain: true });
    expectPrompt(run);
    expect(run.stderr).toBe(`diskwright: fs cat interrupted during cat /data.bin; ${filled} unchanged [E_ABORTED]\n  hint: nothing half-done is left: outputs are removed and in-place changes rolled back; run the command again\n`);
    await expectUnchanged(filled, filledCopy);
  }, 60_000);
  it('fs cat --json refuses a file past its limit at once (it read all of it, deaf to Ctrl-C, and failed after ~50 s)', async () => {
    const started = performance.now();
    const result = await runBin(['fs', 'cat', filled, '/data.bin', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr)).toEqual({ error: { code: 'E_LIMIT', message: '/data.bin is 536870912 bytes; fs cat --json prints at most 67108864 (base64 in one JSON string)', hint: expect.stringContaining('diskwright fs get') } });
    expect(result.stdout).toBe('');
    // A stat, not a read of 512 MiB.
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 60_000);
});

describe('an IMAGE that would block the open', () => {
  it('a FIFO is refused at once by every command taking an image (info, convert and resize waited in open(2), deaf to Ctrl-C)', async () => {
    const work = await tempDir();
    const fifo = join(work, 'fifo');
    await execa('mkfifo', [fifo]);
    const commands = [
      ['info', fifo],
      ['partitions', fifo],
      ['convert', fifo, join(work, 'out.qcow2'), '-O', 'qcow2'],
      ['resize', fifo, '1G'],
      ['fsck', fifo],
      ['fs', 'ls', fifo, '/'],
      ['extract', fifo, '-p', '1', '-o', join(work, 'p1.img')],
      ['kernel', fifo, '-o', join(work, 'k')],
    ];
    const results = await Promise.all(commands.map((args) => runBin(args, { timeout: 20_000 })));
    for (const [i, result] of results.entries()) {
      expect(result.code, `${commands[i]!.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/is not a regular file.*\[E_INVALID_ARGUMENT\]/);
    }
    expect((await readdir(work)).sort()).toEqual(['fifo']);
  }, 60_000);

  it('a FIFO named as a backing file is refused at once: by a trusted chain\'s header, and by create --backing', async () => {
    const work = await tempDir();
    const fifo = join(work, 'ff');
    await execa('mkfifo', [fifo]);
    // qemu-img -u: the header names the FIFO without qemu opening it.
    const overlay = join(work, 'bo.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', fifo, '-F', 'raw', overlay, '1M']);
    const commands = [
      ['convert', '--format', 'qcow2', overlay, join(work, 'bo.raw')],
      ['info', '--format', 'qcow2', overlay],
      ['create', join(work, 'bo2.qcow2'), '--format', 'qcow2', '--backing', fifo, '--backing-format', 'raw'],
      ['create', join(work, 'bo3.qcow2'), '--format', 'qcow2', '--backing', fifo, '--size', '1M'],
    ];
    const results = await Promise.all(commands.map((args) => runBin(args, { timeout: 20_000 })));
    for (const [i, result] of results.entries()) {
      expect(result.code, `${commands[i]!.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/is not a regular file \(it is a FIFO\).*\[E_INVALID_ARGUMENT\]/);
    }
    expect((await readdir(work)).sort()).toEqual(['bo.qcow2', 'ff']);
  }, 60_000);
});
