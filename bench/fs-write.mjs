// Writes into a populated ext filesystem: diskwright (`withFilesystem` + putFile, committed
// crash-safely: its undo record fdatasynced before the image changes, then the image fdatasynced;
// docs/disk.md) vs host `debugfs -w` followed by `sync IMAGE` (so both end durable; debugfs alone is
// not crash-safe: a kill mid-write leaves a half-written filesystem), on
// identical fresh copies, in the same run. Filesystems: partition 1 of the seed-like disk
// (fixtures/make-seed.mjs: ext3 holding ~1.5 GiB) and a bare image of that partition.
// Workloads: one 100 MiB file, five small files in one session (queueWrites, as the CLI's
// `fs put` uses it: one WASM debugfs batch that also makes e2fsprogs 1.47's open check and writes
// only the bitmap blocks it changed, src/ext/queued.ts, docs/fs.md); plus a 10,000-file tree into a
// fresh ext4 image (the bulk tree path). Prints medians, the ratio host time / our time (≥ 1.0 meets
// the target) and the allocated growth of the image file / bytes written (target ≤ 1.05).
// Usage: npm run build && node fixtures/make-seed.mjs && node bench/fs-write.mjs [--runs 3] [--size-mib 100] [--files 10000]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { withFilesystem, closeE2fsPool, extractPartition, readPartitionTable, getPartition } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const RUNS = opt('runs', 3);
const SIZE_MIB = opt('size-mib', 100);
const FILES = opt('files', 10000);
const SMALL = 5;
const PER_DIR = 1000;
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const sh = (cmd, argv, input) => execFileSync(cmd, argv, { env, stdio: ['pipe', 'pipe', 'pipe'], input, maxBuffer: 1 << 30 });

const seed = fileURLToPath(new URL('../fixtures/generated/seed.img', import.meta.url));
if (!existsSync(seed)) {
  console.error(`missing ${seed}: run \`node fixtures/make-seed.mjs\` first`);
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), 'dw-bench-fs-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// Inputs: one big file of random bytes, five small files, a tree of small files.
const bigSrc = join(work, 'big.bin');
{
  const fd = openSync(bigSrc, 'w');
  const chunk = Buffer.alloc(4 << 20);
  for (let i = 0; i < SIZE_MIB / 4; i += 1) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
}
const smallSrc = [];
for (let i = 0; i < SMALL; i += 1) {
  const path = join(work, `small${i}`);
  writeFileSync(path, `small file ${i}\n`.repeat(20 + 40 * i));
  smallSrc.push(path);
}
const smallBytes = smallSrc.reduce((n, p) => n + statSync(p).size, 0);
const smallCmds = join(work, 'small.cmds');
writeFileSync(smallCmds, smallSrc.map((p, i) => `write ${p} /bench-small${i}`).join('\n') + '\n');
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
const treeCmdFile = join(work, 'tree.cmds');
writeFileSync(treeCmdFile, ['mkdir /tree', ...treeCmds].join('\n') + '\n');

// The two populated filesystems: the seed disk (p1 at its offset) and a bare copy of p1.
const table = await readPartitionTable(seed);
const p1 = getPartition(table, 1);
const p1Offset = Number(p1.start) * table.sectorSize;
const bare = join(work, 'p1.img');
await extractPartition(seed, 1, bare, { overwrite: true });
const targets = [
  { name: 'seed p1', source: seed, host: (f) => `${f}?offset=${p1Offset}`, ours: { partition: 1 }, fsck: (f) => ['-fn', `${f}?offset=${p1Offset}`] },
  { name: 'bare p1', source: bare, host: (f) => f, ours: {}, fsck: (f) => ['-fn', f] },
];
const freshCopy = (source, name) => {
  const path = join(work, name);
  rmSync(path, { force: true });
  sh('cp', ['--sparse=always', source, path]);
  sh('sync', [path]);
  return path;
};
const allocated = (path) => statSync(path).blocks * 512;
function fsckClean(argv) {
  try {
    sh('e2fsck', argv);
  } catch (error) {
    throw new Error(`e2fsck ${argv.join(' ')} failed: ${error.stdout}`);
  }
}
const time = async (fn) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Warm both WASM modules (ext2fs package, the tool workers) once, as a long-lived process has them.
{
  const image = join(work, 'warm.img');
  sh('truncate', ['-s', '64M', image]);
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', image]);
  const warm = join(work, 'warm.bin');
  writeFileSync(warm, Buffer.alloc(5 << 20, 1));
  await withFilesystem(image, { write: true }, async (fs) => {
    await fs.writeFile('/warm', 'x');
    await fs.putFile(warm, '/warm.bin');
  });
  // The small-file path: queued puts run as one debugfs batch while the open check runs beside it.
  for (let i = 0; i < 2; i += 1) {
    await withFilesystem(image, { write: true, queueWrites: true }, async (fs) => {
      for (const [k, path] of smallSrc.entries()) await fs.putFile(path, `/warm-${i}-${k}`);
    });
  }
}

const workloads = [
  {
    name: `${SIZE_MIB} MiB file`,
    bytes: SIZE_MIB << 20,
    host: (spec) => sh('debugfs', ['-w', '-R', `write ${bigSrc} /bench-big.bin`, spec]),
    ours: (image, where) => withFilesystem(image, { write: true, ...where }, (fs) => fs.putFile(bigSrc, '/bench-big.bin')),
  },
  {
    name: `${SMALL} small files`,
    bytes: smallBytes,
    host: (spec) => sh('debugfs', ['-w', '-f', smallCmds, spec]),
    ours: (image, where) =>
      withFilesystem(image, { write: true, queueWrites: true, ...where }, async (fs) => {
        for (const [i, path] of smallSrc.entries()) await fs.putFile(path, `/bench-small${i}`);
      }),
  },
];

const rows = [];
for (const target of targets) {
  for (const workload of workloads) {
    const row = { label: `${workload.name} into ${target.name}`, ours: [], host: [], oursGrowth: [], hostGrowth: [], bytes: workload.bytes, amount: workload.bytes / 2 ** 20, unit: 'MiB' };
    for (let run = 0; run < RUNS; run += 1) {
      let image = freshCopy(target.source, 'host.img');
      let before = allocated(image);
      row.host.push(
        await time(async () => {
          workload.host(target.host(image));
          sh('sync', [image]);
        }),
      );
      row.hostGrowth.push(allocated(image) - before);
      image = freshCopy(target.source, 'ours.img');
      before = allocated(image);
      row.ours.push(await time(() => workload.ours(image, target.ours)));
      row.oursGrowth.push(allocated(image) - before);
      if (run === 0) fsckClean(target.fsck(image));
    }
    rows.push(row);
  }
}

// The bulk tree path on a fresh image (host debugfs -f; + sync).
const treeRow = { label: `${FILES}-file tree, fresh ext4`, ours: [], host: [], oursGrowth: [], hostGrowth: [], amount: FILES, unit: 'files' };
const imageMiB = 512;
const freshFs = (name) => {
  const image = join(work, name);
  rmSync(image, { force: true });
  sh('truncate', ['-s', `${imageMiB}M`, image]);
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-N', String(FILES + 4096), image]);
  return image;
};
for (let run = 0; run < RUNS; run += 1) {
  let image = freshFs('host-tree.img');
  treeRow.host.push(
    await time(async () => {
      sh('debugfs', ['-w', '-f', treeCmdFile, image]);
      sh('sync', [image]);
    }),
  );
  image = freshFs('ours-tree.img');
  treeRow.ours.push(await time(() => withFilesystem(image, { write: true }, (fs) => fs.copyIn(treeSrc, '/tree'))));
  if (run === 0) fsckClean(['-fn', image]);
}
rows.push(treeRow);

console.log(`fs-write: ${RUNS} runs, medians; anchor = host debugfs -w + sync IMAGE (both durable); ratio = host time / our time (≥ 1.0 meets the target)`);
for (const row of rows) {
  const o = median(row.ours);
  const h = median(row.host);
  const rate = (s) => `${(row.amount / s).toFixed(row.amount >= 1000 ? 0 : 1)} ${row.unit}/s`;
  const growth =
    row.bytes === undefined
      ? ''
      : `  allocated growth ours ${(median(row.oursGrowth) / 2 ** 20).toFixed(1)} MiB (${(median(row.oursGrowth) / row.bytes).toFixed(2)}× written), host ${(median(row.hostGrowth) / 2 ** 20).toFixed(1)} MiB (${(median(row.hostGrowth) / row.bytes).toFixed(2)}×)`;
  // Each round times host then ours on identical fresh copies: the per-round ratio pairs runs
  // seconds apart, under the same load.
  const paired = median(row.ours.map((t, k) => row.host[k] / t));
  console.log(`${row.label.padEnd(34)} diskwright ${o.toFixed(3)} s (${rate(o)})  host ${h.toFixed(3)} s (${rate(h)})  ratio ${(h / o).toFixed(2)}× (per round: median ${paired.toFixed(2)}×)${growth}`);
  console.log(`${''.padEnd(34)} runs: diskwright ${row.ours.map((t) => t.toFixed(3)).join(' ')} | host ${row.host.map((t) => t.toFixed(3)).join(' ')}`);
}
await closeE2fsPool();
