// convert and extract start without node:zlib and node:worker_threads (src/lazy-node.ts): only
// compressed clusters, -c and commits need them, and a static import costs every start.
import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binPath } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const LAZY = ['zlib', 'worker_threads'];
/** Prints the Node built-ins of LAZY that the process loaded, as one JSON line at exit. */
const PRELOAD = `data:text/javascript,${encodeURIComponent(
  `process.on('exit', () => process.stderr.write('\\nBUILTINS ' + JSON.stringify(process.moduleLoadList.filter((m) => ${JSON.stringify(LAZY.map((m) => `NativeModule ${m}`))}.includes(m))) + '\\n'));`,
)}`;

async function builtinsLoadedBy(args: string[]): Promise<string[]> {
  const result = await execa(process.execPath, ['--import', PRELOAD, binPath, ...args], { reject: false });
  expect(result.exitCode, result.stderr).toBe(0);
  const line = result.stderr.split('\n').find((l) => l.startsWith('BUILTINS '));
  expect(line, result.stderr).toBeDefined();
  return JSON.parse(line!.slice('BUILTINS '.length)) as string[];
}

describe('the start of convert and extract', () => {
  it('loads neither node:zlib nor node:worker_threads for a plain conversion or extract, and -c still compresses on worker threads', async () => {
    const dir = await tempDir('lazy-builtins-');
    const raw = join(dir, 'disk.img');
    await execa('truncate', ['-s', '64M', raw]);
    await execa('sfdisk', ['-q', raw], { input: 'start=2048, type=83\n', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    const qcow2 = join(dir, 'disk.qcow2');
    expect(await builtinsLoadedBy(['convert', raw, qcow2, '-O', 'qcow2', '--format', 'raw'])).toEqual([]);
    expect(await builtinsLoadedBy(['extract', qcow2, '-p', '1', '-o', join(dir, 'p1.img'), '--format', 'qcow2'])).toEqual([]);
    expect(await builtinsLoadedBy(['convert', qcow2, join(dir, 'back.img'), '--format', 'qcow2'])).toEqual([]);
    // The lazy loaders still work where they are needed.
    expect(await builtinsLoadedBy(['convert', raw, join(dir, 'small.qcow2'), '-O', 'qcow2', '-c', '--format', 'raw'])).toContain('NativeModule worker_threads');
  });
});
