import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { binPath, runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const MiB = 1 << 20;
let dir: string;
let image: string;

/** A dos disk: p1 at 2048 (most of the disk), an extended partition with logical p5 at the end. */
async function makeDisk(path: string, sizeMiB: number, dataMiB: number): Promise<void> {
  const handle = await open(path, 'w');
  await handle.truncate(sizeMiB * MiB);
  const chunk = randomBytes(MiB);
  // Data spread through p1 so a copy takes a while and has holes in between.
  const stride = Math.floor(((sizeMiB - 8) * MiB) / Math.max(1, dataMiB) / MiB) * MiB;
  for (let i = 0; i < dataMiB; i++) await handle.write(chunk, 0, MiB, 2 * MiB + i * stride);
  await handle.close();
  const p1 = (sizeMiB - 4) * 2048;
  const script = ['label: dos', `start=2048, size=${p1}, type=83, bootable`, `start=${2048 + p1}, type=5`, `start=${2048 + p1 + 2048}, type=82`, ''].join('\n');
  await execa('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', path], { input: script, env });
}

beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('diskwright-cli-extract-');
  image = join(dir, 'disk.img');
  await makeDisk(image, 64, 8);
});

describe('diskwright extract', () => {
  it('writes the partition and prints a JSON summary with --json', async () => {
    const out = join(dir, 'p1.img');
    const result = await runInProcess(['extract', image, '--partition', '1', '-o', out, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ output: out, partition: 1, offset: 2048 * 512, bytes: 60 * MiB, dataBytes: 8 * MiB, mode: 'full' });
    expect(typeof summary.seconds).toBe('number');
    expect((await stat(out)).size).toBe(60 * MiB);
    const src = await readFile(image);
    expect((await readFile(out)).equals(src.subarray(2048 * 512, 2048 * 512 + 60 * MiB))).toBe(true);
  });

  it('extracts a logical partition', async () => {
    const out = join(dir, 'p5.img');
    const result = await runInProcess(['extract', image, '-p', '5', '-o', out]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/partition 5/);
  });

  it('names the partitions that exist when asked for an unknown one (exit 1, no output)', async () => {
    const out = join(dir, 'nope.img');
    const result = await runInProcess(['extract', image, '-p', '3', '-o', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no partition 3 .*partitions: 1, 2, 5.*\[E_NO_PARTITION\]/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(dir)).not.toContain('nope.img');
  });

  it('refuses an existing output without --force and keeps it', async () => {
    const out = join(dir, 'existing.img');
    await writeFile(out, 'mine');
    const result = await runInProcess(['extract', image, '-p', '1', '-o', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/already exists.*\[E_EXISTS\]/);
    expect(await readFile(out, 'utf8')).toBe('mine');
    expect((await runInProcess(['extract', image, '-p', '1', '-o', out, '--force'])).code).toBe(0);
    expect((await stat(out)).size).toBe(60 * MiB);
  });

  it('reports a truncated image in one line and writes nothing', async () => {
    const cut = join(dir, 'cut.img');
    const bytes = await readFile(image);
    await writeFile(cut, bytes.subarray(0, 20 * MiB));
    const out = join(dir, 'from-cut.img');
    const result = await runInProcess(['extract', cut, '-p', '1', '-o', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/E_TRUNCATED|E_OUT_OF_RANGE/);
    expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    expect((await readdir(dir)).filter((n) => n.includes('from-cut'))).toEqual([]);
  });

  it('rejects a malformed partition number and missing options as usage errors', async () => {
    expect((await runInProcess(['extract', image, '-p', 'x', '-o', join(dir, 'o')])).code).toBe(2);
    expect((await runInProcess(['extract', image, '-o', join(dir, 'o')])).code).toBe(2);
    expect((await runInProcess(['extract', image, '-p', '1'])).code).toBe(2);
  });

  it('says in --help whether the output is byte-identical', async () => {
    const help = await runInProcess(['extract', '--help']);
    expect(help.stdout).toMatch(/byte-identical/);
    expect(help.stdout).toMatch(/--only-used[\s\S]*NOT byte-identical/);
    expect(help.stdout).toMatch(/Example:/);
  });

  it('stops on SIGINT mid-copy: exit 130, no output, no temp file', async () => {
    const big = join(dir, 'big.img');
    await makeDisk(big, 2048, 256);
    const out = join(dir, 'interrupted.img');
    const child = execa(process.execPath, [binPath, 'extract', big, '-p', '1', '-o', out], { reject: false });
    // Wait until the copy has begun: its temp file appears beside the output.
    let sawTemp = false;
    for (let i = 0; i < 2000 && !sawTemp; i++) {
      sawTemp = (await readdir(dir)).some((n) => n.startsWith('.interrupted.img.') && n.endsWith('.tmp'));
      if (!sawTemp) await sleep(5);
    }
    expect(sawTemp).toBe(true);
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode, result.stderr).toBe(130);
    expect(result.stderr).toMatch(/^diskwright: extract interrupted during extract p1; no \S+interrupted\.img written, \S+big\.img unchanged \[E_ABORTED\]/);
    expect((await readdir(dir)).filter((n) => n.includes('interrupted'))).toEqual([]);
  });
});
