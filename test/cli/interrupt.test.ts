import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath, runBin } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

// Ctrl-C on every long command: each runs on an input that takes well over 3 s, gets SIGINT once it
// has reported a step (--json), and must print one line naming diskwright's step and what it left,
// exit 130, leave its image byte-identical (qemu-img compare against a sparse copy: the inputs are
// tens of GiB of holes, too slow to sha256) and no temp file. Timing: the interrupt line must come
// within 1 s of the signal and the exit within 2 s (the slack is for a loaded 2-core CI machine;
// the measured exits are 0.02–0.3 s).
const REPORT_WITHIN_MS = 1000;
const EXIT_WITHIN_MS = 2000;

let dir: string;
/** A 64 GiB ext2 (no uninit_bg: e2fsck reads every inode table, resize2fs extends them all). */
let big: string;
let bigCopy: string;

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir();
  big = join(dir, 'big.ext2');
  const made = await runBin(['mkfs', big, '--type', 'ext2', '--size', '64G']);
  expect(made.code, made.stderr).toBe(0);
  bigCopy = join(dir, 'big.orig');
  await execa('cp', ['--sparse=always', big, bigCopy]);
}, 60_000);

interface Interrupted {
  readonly code: number | undefined;
  readonly stderr: string;
  /** Signal → the error line on stderr. */
  readonly reportMs: number;
  /** Signal → exit. */
  readonly exitMs: number;
}

/** Runs `diskwright ARGS --json`, sends SIGINT when a stderr line matches `ready`, and times the end. */
async function interrupt(args: readonly string[], ready: RegExp, options: { cwd?: string } = {}): Promise<Interrupted> {
  const child = execa(process.execPath, [binPath, ...args, '--json'], { reject: false, ...(options.cwd ? { cwd: options.cwd } : {}) });
  let stderr = '';
  let signalled: number | undefined;
  let reported: number | undefined;
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (signalled === undefined && ready.test(stderr)) {
      signalled = performance.now();
      child.kill('SIGINT');
    }
    if (signalled !== undefined && reported === undefined && stderr.includes('"error"')) reported = performance.now();
  });
  const result = await child;
  const exited = performance.now();
  expect(signalled, `never saw ${ready} in:\n${stderr}`).toBeDefined();
  return { code: result.exitCode, stderr, reportMs: (reported ?? exited) - signalled!, exitMs: exited - signalled! };
}

/** The one error line an interrupted --json run prints. */
function errorLine(stderr: string): { code: string; message: string } {
  const line = stderr.split('\n').find((l) => l.startsWith('{"error"'));
  expect(line, stderr).toBeDefined();
  return (JSON.parse(line!) as { error: { code: string; message: string } }).error;
}

function expectPrompt(run: Interrupted): void {
  expect(run.code, run.stderr).toBe(130);
  expect(run.reportMs).toBeLessThanOrEqual(REPORT_WITHIN_MS);
  expect(run.exitMs).toBeLessThanOrEqual(EXIT_WITHIN_MS);
}

async function expectUnchanged(image: string, copy: string): Promise<void> {
  expect((await stat(image)).size).toBe((await stat(copy)).size);
  const compared = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copy, image], { reject: false });
  expect(compared.exitCode, compared.stdout + compared.stderr).toBe(0);
}

async function leftovers(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith('.') || name.includes('.tmp'));
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
    const tree = join(dir, 'tree');
    await mkdir(tree);
    // 24 × 16 MiB of non-zero bytes: several seconds of mke2fs -d on this machine.
    const block = Buffer.alloc(16 << 20, 0x5a);
    for (let i = 0; i < 24; i++) await writeFile(join(tree, `f${i}`), block);
    const image = join(dir, 'filled.img');
    const run = await interrupt(['mkfs', image, '--size', '2G', '--from', tree], /"event":"progress","step":"fill"/);
    expectPrompt(run);
    expect(errorLine(run.stderr).message).toBe(`mkfs interrupted during fill; ${image} not written`);
    expect(run.stderr).not.toMatch(/mke2fs|worker/);
    await expect(stat(image)).rejects.toThrow();
    expect(await leftovers()).toEqual([]);
  }, 60_000);
});
