// What a start of the built CLI loads (issue 14, fast start). Timings live in bench/cli-start.mjs;
// these tests pin the causes: one bundle instead of ~100 modules, the running command's only, no
// addon-resolution stack, no worker thread for a header read.
import { readFile, writeFile } from 'node:fs/promises';
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

/** Our own files the start loaded besides the `bin` shim (packages and Node's own excluded). */
function ours(loaded: Loaded): string[] {
  return loaded.esm.filter((p) => !p.startsWith('node_modules/') && p !== 'dist/cli/main.js').sort();
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
  it('runs --help from the shim, the manifest and the bundle without commands', async () => {
    const loaded = await loadedBy(['--help']);
    expect(loaded.code).toBe(0);
    expect(loaded.stdout).toMatch(/^Commands:$/m);
    expect(ours(loaded)).toEqual(['dist/cli/bundle/cli.js']);
  });

  it('lists a directory from its own bundle only, and loads the lock addon without require-addon', async () => {
    const loaded = await loadedBy(['fs', 'ls', image, '/etc']);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toBe('motd');
    expect(ours(loaded)).toEqual(['dist/cli/bundle/fs.js']);
    // The prebuilt addon is handed to the package directly (src/disk/native.ts).
    expect(loaded.cjs).toContain('node_modules/fs-native-extensions/index.js');
    expect(loaded.cjs.some((p) => p.includes('require-addon') || p.includes('bare-'))).toBe(false);
    expect(loaded.workers).toBe(0);
  });

  it('reads the superblock for info without starting a worker thread', async () => {
    const loaded = await loadedBy(['info', image, '--json']);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(JSON.parse(loaded.stdout)).toMatchObject({ kind: 'ext4', needsRecovery: false });
    expect(ours(loaded)).toEqual(['dist/cli/bundle/info.js', 'dist/e2fs/worker.mjs']);
    expect(loaded.workers).toBe(0);
  });

  it('lists partitions without loading any WebAssembly (neither ext2fs nor an e2fsprogs tool)', async () => {
    const disk = join(image, '..', 'disk.img');
    // An MBR with one Linux partition; the table is all partitions reads.
    const mbr = Buffer.alloc(1 << 20);
    mbr.writeUInt8(0x83, 446 + 4);
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(0x7fe, 446 + 12);
    mbr.writeUInt16LE(0xaa55, 510);
    await writeFile(disk, Buffer.concat([mbr, Buffer.alloc(1 << 20)]));
    const loaded = await loadedBy(['partitions', disk, '--json']);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(JSON.parse(loaded.stdout).partitiontable.partitions).toHaveLength(1);
    expect(ours(loaded)).toEqual(['dist/cli/bundle/partitions.js']);
    expect(loaded.cjs.some((p) => p.includes('node_modules/ext2fs/') || p.includes('wasm/dist/'))).toBe(false);
    expect(loaded.workers).toBe(0);
  });

  it('converts and extracts without loading execa, tar or unixcrypt (they load ~100 modules: the library barrel)', async () => {
    const disk = join(image, '..', 'convert-in.img');
    const mbr = Buffer.alloc(1 << 20);
    mbr.writeUInt8(0x83, 446 + 4);
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(0x7fe, 446 + 12);
    mbr.writeUInt16LE(0xaa55, 510);
    await writeFile(disk, Buffer.concat([mbr, Buffer.alloc(1 << 20, 7)]));
    const qcow2 = join(image, '..', 'convert-out.qcow2');
    const runs = [
      ['convert', disk, qcow2, '-O', 'qcow2'],
      ['extract', qcow2, '-p', '1', '-o', join(image, '..', 'extract-out.img'), '--format', 'qcow2'],
    ];
    for (const args of runs) {
      const loaded = await loadedBy(args);
      expect(loaded.code, loaded.stderr).toBe(0);
      expect(ours(loaded)).toEqual([`dist/cli/bundle/${args[0]}.js`]);
      const packages = [...loaded.esm, ...loaded.cjs].filter((p) => /node_modules\/(execa|tar|unixcrypt)\//.test(p));
      expect(packages, args[0]).toEqual([]);
    }
  });

  it('routes every command of the manifest to the bundle that holds it', async () => {
    const manifest = JSON.parse(await readFile(join(root, 'dist/cli/commands/manifest.json'), 'utf8')) as { name: string; file: string }[];
    for (const file of new Set(manifest.map((c) => c.file))) {
      const bundle = await readFile(join(root, 'dist/cli/bundle', file), 'utf8');
      for (const c of manifest.filter((m) => m.file === file)) expect(bundle, `${c.name} in ${file}`).toContain(`name: ${JSON.stringify(c.name)}`);
    }
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

/**
 * Preloaded through NODE_OPTIONS into the bin started as a program: at exit it runs a child
 * process (as diskwright runs virt-install or qemu-img) and prints what that child sees.
 */
const CHILD_ENV = `import { execFileSync } from 'node:child_process';
process.on('exit', () => {
  const seen = execFileSync('sh', ['-c', 'printf %s "\${NODE_EXTRA_CA_CERTS-<unset>}|\${DISKWRIGHT_SAVED_NODE_EXTRA_CA_CERTS-<unset>}"'], { encoding: 'utf8' });
  process.stderr.write('\\nCHILD ' + seen + '\\n');
});`;

/** Runs the bin as users do (the file itself, so the kernel reads its shebang) with `certs` set or not. */
async function runProgram(args: string[], certs: string | undefined, preload = false): Promise<{ code: number; stderr: string; child?: string }> {
  const { NODE_EXTRA_CA_CERTS: _ignored, ...env } = process.env;
  if (certs !== undefined) env.NODE_EXTRA_CA_CERTS = certs;
  if (preload) env.NODE_OPTIONS = `--import data:text/javascript,${encodeURIComponent(CHILD_ENV)}`;
  const result = await execa(binPath, args, { reject: false, env, extendEnv: false });
  const line = result.stderr.split('\n').find((l) => l.startsWith('CHILD '));
  return { code: result.exitCode ?? -1, stderr: result.stderr, child: line?.slice('CHILD '.length) };
}

describe('the bin skips NODE_EXTRA_CA_CERTS for its own start only', () => {
  // Node prints this warning when it reads the variable's file at start; a missing file makes the
  // read visible. diskwright makes no TLS connection, so parsing the bundle is pure start cost.
  const WARNING = /Ignoring extra certs from/;

  it('starts node without reading the CA file that NODE_EXTRA_CA_CERTS names', async () => {
    // The control: node started on the file directly reads it and warns.
    const direct = await execa(process.execPath, [binPath, '--version'], { reject: false, env: { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' } });
    expect(direct.stderr).toMatch(WARNING);
    const result = await runProgram(['--version'], '/nonexistent/ca.pem');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(WARNING);
  });

  it('gives the processes it runs the variable unchanged, spaces and quotes included', async () => {
    const value = "/tmp/my certs/it's \"ca\".pem";
    const result = await runProgram(['--version'], value, true);
    expect(result.code, result.stderr).toBe(0);
    expect(result.child).toBe(`${value}|<unset>`);
  });

  it('leaves the variable unset for them when the user had not set it', async () => {
    const result = await runProgram(['--version'], undefined, true);
    expect(result.code, result.stderr).toBe(0);
    expect(result.child).toBe('<unset>|<unset>');
  });
});

describe('the CLI exits as soon as its work is done, never before', () => {
  it('finishes work still pending when the command returns (a background fsync) before it exits', async () => {
    const marker = join(image, '..', `pending-${Date.now()}`);
    // Started at load, done 0.3 s later: long after `--version` has printed and returned.
    const pending = `import { writeFile } from 'node:fs/promises';
setTimeout(() => { void writeFile(${JSON.stringify(marker)}, 'done'); }, 300);
process.on('exit', (code) => process.stderr.write('EXIT ' + code + '\\n'));`;
    const result = await execa(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(pending)}`, binPath, '--version'], { reject: false });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain('EXIT 0');
    expect(await readFile(marker, 'utf8')).toBe('done');
  });

  it('exits with the failing command\'s code once the loop is empty', async () => {
    const result = await runBin(['fs', 'ls', join(image, '..', 'missing.img')]);
    expect(result.code).toBe(1);
  });
});
