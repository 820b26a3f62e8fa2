import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
// @ts-expect-error — plain JS script without type declarations
import { compareRuns, parseKnownDifferences, tally } from '../../../scripts/e2fsprogs-suite/compare.mjs';
// @ts-expect-error — plain JS script without type declarations
import { parseSourcePin } from '../../../scripts/e2fsprogs-suite/source.mjs';
import { requireTool } from '../../helpers/oracle.js';
import { tempDir } from '../../helpers/tmp.js';

const suite = join(import.meta.dirname, '..', '..', '..', 'scripts', 'e2fsprogs-suite');
const ok = { status: 'ok' };
const failed = { status: 'failed' };
const skipped = { status: 'skipped' };

describe('the known-differences list', () => {
  it('maps each listed test to its reason and ignores comments', () => {
    const known = parseKnownDifferences('# header\nf_one  the reason here\n\nm_two\tanother # trailing\n');
    expect([...known]).toEqual([
      ['f_one', 'the reason here'],
      ['m_two', 'another'],
    ]);
  });

  it('rejects an entry without a reason and a test listed twice', () => {
    expect(() => parseKnownDifferences('f_one\n')).toThrow(/:1: expected `TEST  reason`/);
    expect(() => parseKnownDifferences('f_one a\nf_one b\n')).toThrow(/f_one is listed twice/);
  });

  it('as committed, parses and gives every entry a reason', () => {
    const known = parseKnownDifferences(readFileSync(join(suite, 'known-differences.txt'), 'utf8'));
    for (const reason of known.values()) expect(reason.length).toBeGreaterThan(10);
  });
});

describe('comparing a native and a WASM run', () => {
  it('fails only tests that pass natively, fail under WASM and are not listed', () => {
    const native = { a_new: ok, b_listed: ok, c_fixed: ok, d_both: failed, e_same: ok, f_skip: skipped };
    const wasm = { a_new: failed, b_listed: failed, c_fixed: ok, d_both: failed, e_same: ok, f_skip: skipped };
    const known = new Map([
      ['b_listed', 'why'],
      ['c_fixed', 'why'],
      ['f_skip', 'why'],
      ['g_gone', 'why'],
    ]);
    expect(compareRuns(native, wasm, known)).toEqual({
      unexpected: ['a_new'],
      known: ['b_listed'],
      fixed: ['c_fixed'],
      nativeOnly: ['d_both'],
      stale: ['f_skip', 'g_gone'],
    });
  });

  it('counts a test that did not run under WASM as a difference', () => {
    expect(compareRuns({ a_x: ok }, { a_x: skipped }, new Map()).unexpected).toEqual(['a_x']);
    expect(compareRuns({ a_x: ok }, {}, new Map()).unexpected).toEqual(['a_x']);
  });

  it('tallies passed over ran, leaving skipped tests out', () => {
    expect(tally({ a: ok, b: failed, c: skipped })).toEqual({ passed: 1, ran: 2 });
  });
});

describe('the source pin', () => {
  it('reads wasm/SOURCE as wasm/build.sh does', () => {
    const pin = parseSourcePin(readFileSync(join(suite, '..', '..', 'wasm', 'SOURCE'), 'utf8'));
    expect(pin.package).toBe('e2fsprogs');
    expect(pin.version).toMatch(/^1\.47\./);
    expect(pin.sha256.map((h: { name: string }) => h.name)).toContain(`e2fsprogs_${pin.version}.dsc`);
  });
});

describe('the wrapper and its helper server', () => {
  let dir: string;
  let server: ChildProcess;
  const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

  beforeAll(async () => {
    await requireTool('gcc', 'gcc');
    await requireTool('dumpe2fs', 'e2fsprogs');
    dir = await tempDir('diskwright-e2fs-wrapper-');
    const socket = join(dir, 's.sock');
    await execa('gcc', ['-O2', '-Wall', '-Werror', `-DDW_SOCKET="${socket}"`, '-o', join(dir, 'mke2fs'), join(suite, 'wrapper.c')]);
    for (const tool of ['debugfs', 'e2fsck']) copyFileSync(join(dir, 'mke2fs'), join(dir, tool));
    server = spawn(process.execPath, [join(suite, 'server.mjs'), socket, '--workers', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => createInterface({ input: server.stdout! }).once('line', resolve));
  });

  afterAll(() => {
    server?.kill('SIGTERM');
  });

  it('runs the tool in the caller\'s cwd with the caller\'s environment (a relative image, MKE2FS_CONFIG)', async () => {
    writeFileSync(join(dir, 'my.conf'), '[defaults]\n\tinode_size = 512\n\tblocksize = 2048\n');
    const made = await execa(join(dir, 'mke2fs'), ['-q', '-F', '-t', 'ext2', 'rel.img', '4M'], { cwd: dir, stdin: 'ignore', env: { ...env, MKE2FS_CONFIG: './my.conf' } });
    expect(made.exitCode).toBe(0);
    const header = await execa('dumpe2fs', ['-h', join(dir, 'rel.img')], { env });
    expect(header.stdout).toMatch(/^Inode size:\s+512$/m);
    expect(header.stdout).toMatch(/^Block size:\s+2048$/m);
  });

  it('feeds stdin, keeps stdout and stderr apart and returns the exit code, as host debugfs/e2fsck do', async () => {
    const input = 'stats\nnosuchcommand\n';
    const ours = await execa(join(dir, 'debugfs'), ['-f', '-', 'rel.img'], { cwd: dir, input, reject: false });
    const host = await execa('debugfs', ['-f', '-', 'rel.img'], { cwd: dir, input, reject: false, env });
    expect(ours.exitCode).toBe(host.exitCode);
    expect(ours.stdout).toMatch(/Inode size:\s+512/);
    // User/group names differ (no passwd lookup in WASM: "unknown"); the suite's filter.sed drops them too.
    const names = (text: string): string => text.replace(/ \((user|group) [^)]*\)/g, '');
    expect(names(ours.stdout)).toBe(names(host.stdout));
    expect(ours.stderr).toMatch(/Command not found nosuchcommand/);
    expect(ours.stderr).toBe(host.stderr);
    const missing = await execa(join(dir, 'e2fsck'), ['-fn', 'missing.img'], { cwd: dir, stdin: 'ignore', reject: false });
    const hostMissing = await execa('e2fsck', ['-fn', 'missing.img'], { cwd: dir, stdin: 'ignore', reject: false, env });
    expect(missing.exitCode).toBe(8);
    expect(missing.exitCode).toBe(hostMissing.exitCode);
    expect(missing.stdout).toBe(hostMissing.stdout);
    expect(missing.stderr).toMatch(/No such file or directory while trying to open missing\.img/);
  });

  it('refuses a program name that is not one of the shipped tools', async () => {
    // (The wrapper reads stdin to its end before the tool starts, hence stdin 'ignore' here.)
    copyFileSync(join(dir, 'mke2fs'), join(dir, 'e2image'));
    const other = await execa(join(dir, 'e2image'), ['-r', 'rel.img', 'out'], { cwd: dir, stdin: 'ignore', reject: false });
    expect(other.exitCode).toBe(127);
    expect(other.stderr).toMatch(/e2image is not one of e2fsck, /);
  });
});
