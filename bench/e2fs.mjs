#!/usr/bin/env node
// e2fsprogs in WebAssembly vs host e2fsprogs 1.47.0, same images, same run, interleaved rounds:
//   1. e2fsck -fn on an ext4 image holding a 50k-file tree (ours warm: compiled module cached in
//      the worker pool of this process; host: one e2fsck process per run, as users run it)
//   2. resize2fs 2 GiB → 10 GiB (a fresh 2 GiB ext4 per run, made untimed)
//   3. mke2fs -d of the 50k-file tree into a 4 GiB ext4
// Prints min/median per tool and the ratio ours/host of the medians (target ≤ 1.5).
//
//   node bench/e2fs.mjs [--runs 5] [--files 50000] [--keep]
//
// Run after `npm run build` (imports ../dist/index.js). Needs host e2fsprogs (/usr/sbin).
import { execa } from 'execa';
import { mkdir, rm, writeFile, open, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runE2fsTool, closeE2fsPool, wasmDistDir } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    files: { type: 'string', default: '50000' },
    keep: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const files = Number(values.files);
const outDir = join(here, 'out', 'e2fs');
const tree = join(outDir, `tree-${files}`);
const GiB = 2 ** 30;
const env = {
  ...process.env,
  PATH: `${process.env.PATH}:/usr/sbin:/sbin`,
  MKE2FS_CONFIG: join(wasmDistDir(), 'mke2fs.conf'),
  E2FSCK_CONFIG: join(wasmDistDir(), 'e2fsck.conf'),
};

async function sparse(path, size) {
  await rm(path, { force: true });
  const handle = await open(path, 'w');
  await handle.truncate(size);
  await handle.close();
}

async function makeTree() {
  if (existsSync(join(tree, '.complete'))) return;
  await rm(tree, { recursive: true, force: true });
  const perDir = 100;
  for (let d = 0; d < Math.ceil(files / perDir); d++) {
    const dir = join(tree, `d${String(d).padStart(4, '0')}`);
    await mkdir(dir, { recursive: true });
    const jobs = [];
    for (let f = 0; f < perDir && d * perDir + f < files; f++) {
      jobs.push(writeFile(join(dir, `f${f}.txt`), `file ${d}/${f} `.repeat(1 + ((d * 7 + f) % 40))));
    }
    await Promise.all(jobs);
  }
  await writeFile(join(tree, '.complete'), '');
}

async function host(tool, args) {
  const result = await execa(tool, args, { env, reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`host ${tool} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
}

async function ours(tool, args) {
  const result = await runE2fsTool(tool, args);
  if (result.exitCode !== 0) throw new Error(`wasm ${tool} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
}

async function timed(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Interleaves host and ours for `rounds`, each preceded by an untimed `prepare`. */
async function compare(name, rounds, { prepare = async () => {}, hostRun, oursRun }) {
  const times = { host: [], ours: [] };
  for (let i = 0; i < rounds; i++) {
    for (const who of i % 2 ? ['ours', 'host'] : ['host', 'ours']) {
      await prepare(who);
      times[who].push(await timed(() => (who === 'host' ? hostRun() : oursRun())));
    }
  }
  const h = median(times.host);
  const o = median(times.ours);
  const row = { name, host: h, ours: o, ratio: o / h, hostMin: Math.min(...times.host), oursMin: Math.min(...times.ours) };
  console.log(
    `${name.padEnd(40)} host median ${h.toFixed(0).padStart(6)} ms (min ${row.hostMin.toFixed(0)})   ` +
      `diskwright median ${o.toFixed(0).padStart(6)} ms (min ${row.oursMin.toFixed(0)})   ratio ${row.ratio.toFixed(2)}x`,
  );
  return row;
}

await mkdir(outDir, { recursive: true });
console.log(`preparing a ${files}-file tree in ${tree} …`);
await makeTree();

const results = [];

// 1. e2fsck -fn on an image with the tree (made by host mke2fs, untimed).
const fsckImage = join(outDir, 'fsck.img');
await sparse(fsckImage, 4 * GiB);
await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-N', String(files + 1000), '-d', tree, fsckImage]);
await ours('e2fsck', ['-fn', fsckImage]); // warm: compile the module once in this process
results.push(
  await compare(`e2fsck -fn, ${files} files (warm)`, runs, {
    hostRun: () => host('e2fsck', ['-fn', fsckImage]),
    oursRun: () => ours('e2fsck', ['-fn', fsckImage]),
  }),
);

// 2. resize2fs 2 → 10 GiB on a fresh filesystem each run.
const resizeImage = join(outDir, 'resize.img');
await ours('resize2fs', ['-P', fsckImage]).catch(() => {}); // warm the resize2fs module
results.push(
  await compare('resize2fs 2 GiB → 10 GiB', runs, {
    prepare: async () => {
      await sparse(resizeImage, 2 * GiB);
      await host('mke2fs', ['-q', '-F', '-t', 'ext4', resizeImage]);
      const handle = await open(resizeImage, 'r+');
      await handle.truncate(10 * GiB);
      await handle.close();
    },
    hostRun: () => host('resize2fs', [resizeImage]),
    oursRun: () => ours('resize2fs', [resizeImage]),
  }),
);

// 3. mke2fs -d of the tree.
const mkfsImage = join(outDir, 'mkfs.img');
const mkfsArgs = ['-q', '-F', '-t', 'ext4', '-N', String(files + 1000), '-d', tree, mkfsImage, '4G'];
await sparse(mkfsImage, 4 * GiB);
await ours('mke2fs', mkfsArgs); // warm
results.push(
  await compare(`mke2fs -d, ${files} files`, Math.max(3, Math.min(runs, 5)), {
    // Flush earlier writes so one run's writeback does not land in the next run's time.
    prepare: async () => {
      await sparse(mkfsImage, 4 * GiB);
      await execa('sync');
    },
    hostRun: () => host('mke2fs', mkfsArgs),
    oursRun: () => ours('mke2fs', mkfsArgs),
  }),
);
console.log(`mkfs image allocation (ours, last run): ${(((await stat(mkfsImage)).blocks * 512) / 2 ** 20).toFixed(1)} MiB`);

await closeE2fsPool();
if (!values.keep) {
  await rm(fsckImage, { force: true });
  await rm(resizeImage, { force: true });
  await rm(mkfsImage, { force: true });
}
console.log(`target: ratio ≤ 1.5 — ${results.every((r) => r.ratio <= 1.5) ? 'met' : 'NOT met for ' + results.filter((r) => r.ratio > 1.5).map((r) => r.name).join(', ')}`);
