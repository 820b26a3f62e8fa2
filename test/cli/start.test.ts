// What a start of the built CLI loads (issue 14, fast start). Timings live in bench/cli-start.mjs;
// these tests pin the causes: the bundle instead of ~100 modules, only the running command's chunk,
// no addon-resolution stack, no worker thread for a header read.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath, runBin } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Preloaded into the CLI: records every ES module it resolves (a loader hook), the CommonJS
 * modules it required and the worker threads it started, and prints them as one JSON line on
 * stderr at exit.
 */
const HOOK = `export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  context.parentURL && result.url.startsWith('file:') && globalThis.__dwPort?.postMessage(result.url);
  return result;
}
export function initialize(data) { globalThis.__dwPort = data.port; }`;
const PRELOAD = `import { register, createRequire } from 'node:module';
import { MessageChannel, Worker } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const esm = [];
port1.on('message', (url) => esm.push(url));
port1.unref();
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}), { data: { port: port2 }, transferList: [port2] });
let workers = 0;
const emit = Worker.prototype.emit;
Worker.prototype.emit = function (...args) { if (args[0] === 'online' && this.constructor === Worker) workers++; return emit.apply(this, args); };
process.on('exit', () => {
  const cjs = Object.keys(createRequire('/').cache);
  process.stderr.write('\\nLOADED ' + JSON.stringify({ esm, cjs, workers }) + '\\n');
});`;

interface Loaded {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Paths relative to the package root (node_modules/… for packages). */
  readonly esm: string[];
  readonly cjs: string[];
  readonly workers: number;
}

async function loadedBy(args: string[]): Promise<Loaded> {
  const preload = `data:text/javascript,${encodeURIComponent(PRELOAD)}`;
  const result = await execa(process.execPath, ['--import', preload, binPath, ...args], { reject: false });
  const line = result.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  expect(line, result.stderr).toBeDefined();
  const data = JSON.parse(line!.slice('LOADED '.length)) as { esm: string[]; cjs: string[]; workers: number };
  const rel = (p: string): string => (p.startsWith('file:') ? fileURLToPath(p) : p).replace(root, '');
  return {
    code: result.exitCode ?? -1,
    stdout: result.stdout,
    stderr: result.stderr.replace(line!, ''),
    esm: [...new Set(data.esm.map(rel))],
    cjs: data.cjs.map(rel),
    workers: data.workers,
  };
}

let image: string;

beforeAll(async () => {
  const dir = await tempDir();
  image = join(dir, 'fs.ext4');
  const motd = join(dir, 'motd');
  await writeFile(motd, 'hello\n');
  for (const args of [['mkfs', image, '--type', 'ext4', '--size', '8M'], ['fs', 'mkdir', image, '/etc'], ['fs', 'put', image, motd, '/etc/motd']]) {
    const made = await runBin(args);
    expect(made.code, made.stderr).toBe(0);
  }
});

describe('the built CLI starts fast', () => {
  it('runs --help from the bundle entry and the manifest alone', async () => {
    const loaded = await loadedBy(['--help']);
    expect(loaded.code).toBe(0);
    expect(loaded.stdout).toMatch(/^Commands:$/m);
    const ours = loaded.esm.filter((p) => !p.startsWith('node_modules/'));
    // The shim, the bundle's entry and the chunks of argument parsing and errors: no command.
    expect(ours.every((p) => p === 'dist/cli/main.js' || p.startsWith('dist/cli/bundle/')), ours.join('\n')).toBe(true);
    expect(ours.some((p) => /bundle\/(?!chunk-)[a-z]+-[A-Z0-9]{8}\.js$/.test(p)), ours.join('\n')).toBe(false);
    expect(ours.length).toBeLessThanOrEqual(8);
  });

  it('lists a directory loading only its own command chunk, no unbundled dist module, and the addon without require-addon', async () => {
    const loaded = await loadedBy(['fs', 'ls', image, '/etc']);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toBe('motd');
    const ours = loaded.esm.filter((p) => !p.startsWith('node_modules/'));
    expect(ours.every((p) => p === 'dist/cli/main.js' || p.startsWith('dist/cli/bundle/')), ours.join('\n')).toBe(true);
    expect(ours.filter((p) => /bundle\/(?!chunk-)[a-z]+-[A-Z0-9]{8}\.js$/.test(p)).map((p) => p.replace(/.*bundle\/([a-z]+)-.*/, '$1'))).toEqual(['fs']);
    expect(ours.length).toBeLessThanOrEqual(20);
    // The prebuilt lock addon is loaded straight from its file (src/disk/native.ts).
    expect(loaded.cjs).toContain('node_modules/fs-native-extensions/index.js');
    expect(loaded.cjs.some((p) => p.includes('require-addon') || p.includes('bare-'))).toBe(false);
    expect(loaded.workers).toBe(0);
  });

  it('prints stack traces that name the TypeScript sources with --debug', async () => {
    const result = await runBin(['fs', 'ls', join(image, '..', 'missing.img'), '--debug']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/src\/ext\/with-filesystem\.ts:\d+:\d+/);
  });

  it('prints one line without --debug, as before the bundle', async () => {
    const result = await runBin(['fs', 'ls', join(image, '..', 'missing.img')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^diskwright: image .*missing\.img not found \[E_NOT_FOUND\]$/);
  });
});
