import { spawn } from 'node:child_process';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binPath, runBin, runInProcess } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';

describe('diskwright CLI frame', () => {
  it('lists commands with --help and exits 0', async () => {
    const result = await runInProcess(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Usage: diskwright COMMAND/);
  });

  it('rejects an unknown command with one line, no stack, exit 2', async () => {
    const result = await runBin(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^diskwright: unknown command `frobnicate` \[E_USAGE\]/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('diskwright CLI errors', () => {
  it('prints errors as one JSON line on stderr with --json', async () => {
    const result = await runInProcess(['create', 'x.img', '--size', '-5G', '--json']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(JSON.parse(result.stderr)).toEqual({
      error: { code: 'E_INVALID_ARGUMENT', message: 'Expected `--size` to be a size like 10G, 512M or 2048s, got `-5G`', hint: null },
    });
  });

  it('refuses a disk size that is not whole sectors unless --allow-unaligned', async () => {
    const result = await runInProcess(['create', 'x.img', '--size', '10']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^diskwright: Expected `--size` to be a multiple of 512 bytes \(whole sectors\), got `10` \(10 bytes\) \[E_INVALID_ARGUMENT\]\n  hint: add a unit/);
  });

  it('answers --help from the option spec and reports unknown options as usage errors (exit 2)', async () => {
    expect((await runInProcess(['fs', 'ls', '--help'])).stdout).toMatch(/^Usage: diskwright fs ls/);
    const result = await runBin(['fs', 'ls', 'x.img', '--frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('diskwright: fs ls: unknown option `--frobnicate` [E_USAGE]\n  hint: run `diskwright fs ls --help` for its options');
  });
});

describe('diskwright output handling', () => {
  it('exits quietly when the reader closes the pipe (`… | head -1`)', async () => {
    const dir = await tempDir('diskwright-cli-epipe-');
    const image = join(dir, 'fs.img');
    const big = join(dir, 'big');
    await writeFile(big, Buffer.alloc(4 << 20, 0x61));
    expect((await runInProcess(['mkfs', image, '--size', '16M'])).code).toBe(0);
    expect((await runInProcess(['fs', 'put', image, big, '/big'])).code).toBe(0);
    const child = spawn(process.execPath, [binPath, 'fs', 'cat', image, '/big'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(141);
  });

  it('names the output path the user gave, before any work, when its directory is missing or it is a directory', async () => {
    const dir = await tempDir('diskwright-cli-outpath-');
    const missing = join(dir, 'nope', 'a.img');
    const result = await runInProcess(['create', missing, '--size', '1M']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`diskwright: cannot write ${missing}: directory ${join(dir, 'nope')} does not exist [E_NOT_FOUND]\n  hint: create it first (mkdir -p ${join(dir, 'nope')})\n`);
    await mkdir(join(dir, 'adir'));
    const isDir = await runInProcess(['create', join(dir, 'adir'), '--size', '1M', '--force']);
    expect(isDir.stderr).toMatch(new RegExp(`^diskwright: ${join(dir, 'adir')} is a directory \\[E_EXISTS\\]\n  hint: name a file`));
    expect(await readdir(join(dir, 'adir'))).toEqual([]);
  });

  it.skipIf(process.getuid?.() === 0)('reports a read-only output directory in one line without the temp name', async () => {
    const dir = await tempDir('diskwright-cli-rodir-');
    await chmod(dir, 0o500);
    const result = await runInProcess(['create', join(dir, 'a.img'), '--size', '1M']);
    await chmod(dir, 0o700);
    expect(result.stderr).toMatch(/^diskwright: cannot write .*a\.img: directory .* is not writable by you \[E_IO\]\n/);
    expect(result.stderr).not.toMatch(/\.tmp/);
  });
});
