// Bulk writes into an ext4 image: diskwright (`withFilesystem` + putFile / copyIn, in-process,
// committed crash-safely with fsync) vs host `debugfs -w` (no fsync) on identical fresh images,
// in the same run. Prints medians and the throughput ratio (≥ 1.0 means diskwright is as fast).
// Usage: npm run build && node bench/fs-write.mjs [--runs 3] [--size-mib 200] [--files 10000]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { withFilesystem, closeE2fsPool } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const RUNS = opt('runs', 3);
const SIZE_MIB = opt('size-mib', 200);
const FILES = opt('files', 10000);
const PER_DIR = 1000;
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const sh = (cmd, argv, input) => execFileSync(cmd, argv, { env, stdio: ['pipe', 'pipe', 'pipe'], input, maxBuffer: 1 << 30 });

const work = mkdtempSync(join(tmpdir(), 'dw-bench-fs-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// Inputs: one big file of random bytes, and a tree of small files.
const bigSrc = join(work, 'big.bin');
{
  const fd = openSync(bigSrc, 'w');
  const chunk = Buffer.alloc(4 << 20);
  for (let i = 0; i < SIZE_MIB / 4; i += 1) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
}
const treeSrc = join(work, 'tree');
const treeCmds = [];
for (let i = 0; i < FILES; i += 1) {
  const d = `d${Math.floor(i / PER_DIR)}`;
  if (i % PER_DIR === 0) {
    mkdirSync(join(treeSrc, d), { recursive: true });
    treeCmds.push(`mkdir /tree/${d}`);
  }
  writeFileSync(join(treeSrc, d, `f${i}`), `file ${i} `.repeat(1 + (i % 200)));
  treeCmds.push(`write ${join(treeSrc, d, `f${i}`)} /tree/${d}/f${i}`);
}
const cmdFile = join(work, 'tree.cmds');
writeFileSync(cmdFile, ['mkdir /tree', ...treeCmds].join('\n') + '\n');

function freshImage(name, sizeMiB) {
  const image = join(work, name);
  rmSync(image, { force: true });
  sh('truncate', ['-s', `${sizeMiB}M`, image]);
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-N', String(FILES + 4096), image]);
  return image;
}
function fsckClean(image) {
  try {
    sh('e2fsck', ['-fn', image]);
  } catch (error) {
    throw new Error(`e2fsck -fn failed on ${image}: ${error.stdout}`);
  }
}
const time = async (fn) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Warm both WASM modules (ext2fs package, debugfs worker) once, as a long-lived process has them.
{
  const image = freshImage('warm.img', 64);
  const warm = join(work, 'warm.bin');
  writeFileSync(warm, Buffer.alloc(5 << 20, 1));
  await withFilesystem(image, { write: true }, async (fs) => {
    await fs.writeFile('/warm', 'x');
    await fs.putFile(warm, '/warm.bin');
  });
}

const results = { bigOurs: [], bigHost: [], treeOurs: [], treeHost: [] };
const imageMiB = Math.max(512, SIZE_MIB * 2 + 128);
for (let run = 0; run < RUNS; run += 1) {
  let image = freshImage('host.img', imageMiB);
  results.bigHost.push(await time(async () => sh('debugfs', ['-w', '-R', `write ${bigSrc} /big.bin`, image])));
  image = freshImage('ours.img', imageMiB);
  results.bigOurs.push(await time(() => withFilesystem(image, { write: true }, (fs) => fs.putFile(bigSrc, '/big.bin'))));
  fsckClean(image);

  image = freshImage('host-tree.img', imageMiB);
  results.treeHost.push(await time(async () => sh('debugfs', ['-w', '-f', cmdFile, image])));
  image = freshImage('ours-tree.img', imageMiB);
  results.treeOurs.push(await time(() => withFilesystem(image, { write: true }, (fs) => fs.copyIn(treeSrc, '/tree'))));
  fsckClean(image);
}

const line = (label, ours, host, unit, amount) => {
  const o = median(ours);
  const h = median(host);
  const rate = (s) => `${(amount / s).toFixed(amount > 1000 ? 0 : 1)} ${unit}/s`;
  console.log(`${label.padEnd(28)} diskwright ${o.toFixed(3)} s (${rate(o)})  host debugfs ${h.toFixed(3)} s (${rate(h)})  ratio ${(h / o).toFixed(2)}×`);
};
console.log(`fs-write: ${RUNS} runs, medians; ext4 ${imageMiB} MiB images; ratio = host time / our time (≥ 1.0 meets the target)`);
line(`${SIZE_MIB} MiB file`, results.bigOurs, results.bigHost, 'MiB', SIZE_MIB);
line(`${FILES}-file tree`, results.treeOurs, results.treeHost, 'files', FILES);
await closeE2fsPool();
