#!/usr/bin/env node
// e2fsprogs' own regression suite (tests/ of the source wasm/SOURCE pins), run twice: with the
// native programs built from that source, and with diskwright's WebAssembly tools (wasm/dist)
// standing in for e2fsck, mke2fs, tune2fs, dumpe2fs, e2undo, resize2fs and debugfs. Fails when a
// test passes natively and not under WASM, unless known-differences.txt lists it with a reason.
//
//   npm run test:e2fsprogs [-- --jobs N] [--tests REGEX] [--reuse-native] [--timeout SECONDS]
//
// The source download and the native build live in ${DISKWRIGHT_CACHE:-~/.cache/diskwright}/
// e2fsprogs-suite (reruns skip both); each run's trees and logs stay there until the next run.
// Run after `npm run build` (the helper server imports dist/).
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { buildNative, fetchSource, parseSourcePin } from './source.mjs';
import { listTests, mirrorTree, runTests } from './suite.mjs';
import { compareRuns, formatSummary, parseKnownDifferences, tally } from './compare.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** One run at a time per cache directory: a second one would delete the first one's trees. */
function lockCache(path) {
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      process.on('exit', () => rmSync(path, { force: true }));
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSync(path, 'utf8'));
    try {
      process.kill(holder, 0);
    } catch {
      rmSync(path, { force: true }); // left by a run that died
      continue;
    }
    process.stderr.write(`e2fsprogs-suite: another run (pid ${holder}) is using ${dirname(path)}; wait for it or set DISKWRIGHT_CACHE\n`);
    process.exit(1);
  }
}
const repo = join(here, '..', '..');
const { values } = parseArgs({
  options: {
    // One more than the cores: tests spend part of their time in shell, sed, diff and socket waits
    // (2 cores, load ~21: whole run 335 s with 2 at a time, 295 s with 3).
    jobs: { type: 'string', default: String(availableParallelism() + 1) },
    tests: { type: 'string' },
    'reuse-native': { type: 'boolean', default: false },
    timeout: { type: 'string', default: '600' },
  },
});
const jobs = Number(values.jobs);
const timeoutSeconds = Number(values.timeout);
const log = (line) => process.stdout.write(`e2fsprogs-suite: ${line}\n`);

const cache = join(process.env.DISKWRIGHT_CACHE || join(homedir(), '.cache', 'diskwright'), 'e2fsprogs-suite');
const pin = parseSourcePin(readFileSync(join(repo, 'wasm', 'SOURCE'), 'utf8'));
const known = parseKnownDifferences(readFileSync(join(here, 'known-differences.txt'), 'utf8'));
const srcDir = join(cache, 'src');
const buildDir = join(cache, `build-${pin.version}`);
const runDir = join(cache, 'run');
const timingsFile = join(cache, 'timings.json');
const nativeResultsFile = join(cache, 'native-results.json');

const t0 = performance.now();
mkdirSync(srcDir, { recursive: true });
lockCache(join(cache, 'run.lock'));
await fetchSource(srcDir, pin, log);
const built = await buildNative(srcDir, buildDir, pin, { jobs, log });
const buildSeconds = (performance.now() - t0) / 1000;
log(`${built ? 'built' : 'reused'} the native ${pin.package} ${pin.version} tree (${buildSeconds.toFixed(0)} s)`);

let tests = listTests(join(buildDir, 'tests'));
if (values.tests) tests = tests.filter((name) => new RegExp(values.tests).test(name));
const timings = existsSync(timingsFile) ? JSON.parse(readFileSync(timingsFile, 'utf8')) : { native: {}, wasm: {} };
// The suite's own environment (test_config sets the rest); no inherited e2fsprogs overrides.
const env = { ...process.env };
for (const name of ['E2FSPROGS_FAKE_TIME', 'E2FSCK_TIME', 'E2FSCK_CONFIG', 'MKE2FS_CONFIG', 'MKE2FS_DEVICE_SECTSIZE', 'MKE2FS_DEVICE_PHYS_SECTSIZE', 'E2FSPROGS_SKIP_PROGRESS']) delete env[name];
let failedLines = 0;
const progress = (kind) => (name, result) => {
  if (result.status === 'failed' && failedLines++ < 200) log(`${kind} ${name}: failed${result.detail.startsWith('timed out') ? ` (${result.detail})` : ''}`);
};

// Native run (or the cached one of the same build, for quick WASM-only iterations).
let native;
const cached = existsSync(nativeResultsFile) ? JSON.parse(readFileSync(nativeResultsFile, 'utf8')) : undefined;
if (values['reuse-native'] && cached?.build === readFileSync(join(buildDir, '.diskwright-built'), 'utf8')) {
  native = { results: Object.fromEntries(tests.filter((t) => cached.results[t]).map((t) => [t, cached.results[t]])), seconds: cached.seconds };
  log(`reusing the native results of ${cached.date}`);
} else {
  log(`native run: ${tests.length} tests, ${jobs} at a time`);
  mirrorTree(buildDir, join(runDir, 'native'), undefined);
  native = await runTests(join(runDir, 'native'), tests, { jobs, timeoutSeconds, previous: timings.native, env, onResult: progress('native') });
  if (!values.tests) {
    writeFileSync(nativeResultsFile, JSON.stringify({ build: readFileSync(join(buildDir, '.diskwright-built'), 'utf8'), date: new Date().toISOString(), ...native }));
  }
}

// WASM run: one helper server keeps the compiled modules; the wrapper forwards each call to it.
const wasmTree = join(runDir, 'wasm');
mkdirSync(runDir, { recursive: true });
const socket = join(runDir, 'e2fs.sock');
if (Buffer.byteLength(socket) > 100) throw new Error(`socket path too long for a unix socket: ${socket} (set DISKWRIGHT_CACHE to a shorter directory)`);
const wrapper = join(runDir, 'diskwright-e2fs-wrapper');
await execa('gcc', ['-O2', '-Wall', '-Werror', `-DDW_SOCKET="${socket}"`, '-o', wrapper, join(here, 'wrapper.c')]);
mirrorTree(buildDir, wasmTree, wrapper);
const statsFile = join(runDir, 'server-stats.json');
rmSync(statsFile, { force: true });
const server = spawn(process.execPath, [join(here, 'server.mjs'), socket, '--workers', String(jobs), '--stats', statsFile], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`the helper server exited with ${code} before it was ready`)));
  createInterface({ input: server.stdout }).once('line', resolve);
});
log(`WASM run: ${tests.length} tests, ${jobs} at a time, tools from ${join(repo, 'wasm', 'dist')}`);
let wasm;
try {
  wasm = await runTests(wasmTree, tests, { jobs, timeoutSeconds, previous: timings.wasm, env, onResult: progress('WASM') });
} finally {
  server.removeAllListeners('exit');
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
}

for (const [kind, run] of [['native', native], ['wasm', wasm]]) {
  for (const [name, result] of Object.entries(run.results)) timings[kind][name] = result.seconds;
}
writeFileSync(timingsFile, JSON.stringify(timings));

const differences = compareRuns(native.results, wasm.results, values.tests ? new Map([...known].filter(([t]) => tests.includes(t))) : known);
for (const line of formatSummary({ native: native.results, wasm: wasm.results, nativeSeconds: native.seconds, wasmSeconds: wasm.seconds, differences, known })) log(line);
if (existsSync(statsFile)) {
  const stats = JSON.parse(readFileSync(statsFile, 'utf8'));
  const calls = Object.values(stats).reduce((sum, s) => sum + s.calls, 0);
  const ms = Object.values(stats).reduce((sum, s) => sum + s.ms, 0);
  log(`WASM tool calls: ${calls}, ${(ms / Math.max(1, calls)).toFixed(1)} ms each in the server on average (${Object.entries(stats).map(([t, s]) => `${t} ${s.calls}`).join(', ')})`);
}
for (const name of differences.unexpected) {
  log(`--- ${name} (WASM) ---`);
  process.stdout.write(`${(wasm.results[name].detail || wasm.results[name].output).split('\n').slice(0, 40).join('\n')}\n`);
}
log(`logs and outputs: ${runDir}/{native,wasm}/tests; total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
const n = tally(native.results);
if (!values.tests && n.passed < 0.9 * n.ran) {
  log(`the native run itself is broken (${n.passed} / ${n.ran} passed); nothing to compare against`);
  process.exitCode = 1;
}
if (differences.unexpected.length) process.exitCode = 1;
