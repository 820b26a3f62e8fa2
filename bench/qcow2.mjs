#!/usr/bin/env node
// qcow2 conversions, diskwright against qemu-img in the same run (issue 10):
//   raw → qcow2 (`convert -O qcow2`), raw → compressed qcow2 (`-c`), qcow2 → raw, and extract of
//   partition 1 from a qcow2 (against qemu-img convert of that byte range).
// Input: a populated seed-like disk (fixtures/make-seed.mjs): 2 GiB sparse MBR image, p1 ext3 with
// ~768 MiB of deterministic files (small text-like files, binaries, zero runs), a logical swap at
// the end; about 40 % of the disk holds data, the rest are holes. Made once under
// bench/out/qcow2-input (kept between runs).
// Fair timing: before every timed run its old output is removed, dirty data is written back
// (`sync`) and the run's input is evicted from the page cache (fadvise DONTNEED), so both tools
// read it cold with their binaries warm; `--drop-caches` drops the whole page cache instead (root),
// which also starts both tools cold, except node's binary, which the bench process keeps mapped.
// The order of the three timed methods changes every round, through all six permutations (each
// method runs first, and right after each other method, equally often); medians, and the median
// of the per-round ratios.
// diskwright fsyncs its output before the rename; qemu-img does not (cache=unsafe for the
// output), so it is timed twice: alone, and followed by `sync FILE` (equal durability, the
// target's anchor). diskwright runs as users run it: the `bin` file itself, whose shebang starts
// node without NODE_EXTRA_CA_CERTS (node would read and parse that CA bundle at every start,
// 0.04–0.05 s here; diskwright makes no TLS connection; scripts/bundle-cli.mjs). Prints every
// run's time, and the start of `node -e 0`, which every diskwright run pays and qemu-img does not,
// in the environment as it is and, when NODE_EXTRA_CA_CERTS is set (the project's sandbox, many
// CI images), without it too.
// Figures and what the time is made of: docs/qcow2.md, "Speed".
//
//   node bench/qcow2.mjs [--runs 6] [--keep] [--drop-caches] [--data-size 768M]
//                        [--cases raw-qcow2,raw-qcow2-c,qcow2-raw,extract]
//
// Run after `npm run build`.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeSeed } from '../fixtures/make-seed.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '6' }, keep: { type: 'boolean', default: false }, 'data-size': { type: 'string', default: '768M' }, cases: { type: 'string' }, 'drop-caches': { type: 'boolean', default: false } } });
const runs = Number(values.runs);
const outDir = join(here, 'out', 'qcow2');
const inputDir = join(here, 'out', 'qcow2-input');
const cli = join(here, '..', 'dist', 'cli', 'main.js');
const SIZE = 2 * 2 ** 30;
const dataSize = Number(/^(\d+)M$/.exec(values['data-size'])?.[1] ?? 768) * 2 ** 20;
const input = join(inputDir, `seed-2g-${dataSize >> 20}m.img`);

await mkdir(outDir, { recursive: true });
await mkdir(inputDir, { recursive: true });
if (!existsSync(input)) await makeSeed({ out: input, dataSize, diskSize: SIZE, force: false });
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const table = JSON.parse((await execa('sfdisk', ['--json', input], { env })).stdout).partitiontable.partitions;
const p1Offset = table[0].start * 512;
const p1Length = table[0].size * 512;

let canDrop = true;
/**
 * Before every timed run: dirty data written back, then the input's pages evicted
 * (posix_fadvise DONTNEED through `dd iflag=nocache count=0`), so both tools read it cold while
 * their own binaries stay as warm as a user's are. `--drop-caches` drops the whole page cache
 * instead (as this bench did before): then the tools start cold too, except node's binary,
 * which the bench process itself keeps mapped — an edge for diskwright that qemu-img lacks.
 */
async function coolDown(inputs) {
  await execa('sync');
  if (values['drop-caches']) {
    try {
      await writeFile('/proc/sys/vm/drop_caches', '3');
    } catch {
      canDrop = false;
    }
    return;
  }
  for (const path of inputs) await execa('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
}

const qemuQcow = join(outDir, 'qemu.qcow2');
await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', input, qemuQcow]);

const out = (name) => join(outDir, name);
const allCases = [
  {
    name: 'raw → qcow2',
    id: 'raw-qcow2',
    input,
    ours: (f) => execa(cli, ['convert', input, f, '-O', 'qcow2', '--format', 'raw']),
    anchor: (f) => execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', input, f]),
    compareWith: (f) => ['compare', '-f', 'qcow2', '-F', 'raw', f, input],
  },
  {
    name: 'raw → qcow2 -c',
    id: 'raw-qcow2-c',
    input,
    ours: (f) => execa(cli, ['convert', input, f, '-O', 'qcow2', '-c', '--format', 'raw']),
    anchor: (f) => execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', input, f]),
    compareWith: (f) => ['compare', '-f', 'qcow2', '-F', 'raw', f, input],
  },
  {
    name: 'qcow2 → raw',
    id: 'qcow2-raw',
    input: qemuQcow,
    ours: (f) => execa(cli, ['convert', qemuQcow, f, '--format', 'qcow2']),
    anchor: (f) => execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qemuQcow, f]),
    compareWith: (f) => ['compare', '-f', 'raw', '-F', 'raw', f, input],
  },
  {
    name: 'extract p1 qcow2',
    id: 'extract',
    input: qemuQcow,
    ours: (f) => execa(cli, ['extract', qemuQcow, '-p', '1', '-o', f, '--format', 'qcow2']),
    anchor: (f) => execa('qemu-img', ['convert', '--image-opts', `driver=raw,offset=${p1Offset},size=${p1Length},file.driver=qcow2,file.file.filename=${qemuQcow}`, '-O', 'raw', f]),
    compareWith: (f, i) => ['compare', '-f', 'raw', '-F', 'raw', f, out(`${i}-anchor`)],
  },
];

const wantedCases = values.cases?.split(',');
const cases = allCases.filter((c) => !wantedCases || wantedCases.includes(c.id));
if (cases.length === 0) throw new Error(`--cases: none of ${values.cases} is one of ${allCases.map((c) => c.id).join(', ')}`);
const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const methods = [
  { key: 'ours', sync: false },
  { key: 'anchor', sync: false },
  { key: 'anchorSync', sync: true },
];
/** Every order of the three methods: round r runs ORDERS[r % 6]. */
const ORDERS = [
  [0, 1, 2],
  [1, 2, 0],
  [2, 0, 1],
  [0, 2, 1],
  [2, 1, 0],
  [1, 0, 2],
];
const results = cases.map(() => ({ ours: [], anchor: [], anchorSync: [], position: { ours: [[], [], []], anchor: [[], [], []], anchorSync: [[], [], []] } }));
const loadAtStart = loadavg()[0];
const nodeStart = [];
const nodeStartBare = [];
const extraCerts = process.env.NODE_EXTRA_CA_CERTS !== undefined;
const { NODE_EXTRA_CA_CERTS: _certs, ...bareEnv } = process.env;

/** Every timed run starts alike: its old output gone, dirty data written back, its input cold. */
async function prepare(file, inputs) {
  await rm(file, { force: true });
  await coolDown(inputs);
}

for (let round = 0; round < runs; round++) {
  await prepare(out('node-start'), []);
  let t0 = performance.now();
  await execa(process.execPath, ['-e', '0']);
  nodeStart.push((performance.now() - t0) / 1000);
  if (extraCerts) {
    await prepare(out('node-start'), []);
    t0 = performance.now();
    await execa(process.execPath, ['-e', '0'], { env: bareEnv, extendEnv: false });
    nodeStartBare.push((performance.now() - t0) / 1000);
  }
  for (const [i, c] of cases.entries()) {
    const r = results[i];
    // The order goes through all six permutations of the three methods, one per round (so
    // `--runs 6` and its multiples are balanced): each method runs first, and right after each
    // other method, equally often. A plain rotation put qemu-img + sync right after qemu-img in
    // two rounds of three, and a run right after the same tool was faster on this VM (extract from
    // a qcow2, qemu-img after qemu-img 0.68-0.93 s, after diskwright 0.88-1.53 s; diskwright the
    // same either way: docs/qcow2.md, "Speed"), which favoured the anchor.
    for (const [position, index] of ORDERS[round % ORDERS.length].entries()) {
      const { key, sync } = methods[index];
      const file = out(`${i}-${key}`);
      await prepare(file, [c.input]);
      t0 = performance.now();
      await (key === 'ours' ? c.ours : c.anchor)(file);
      if (sync) await execa('sync', [file]);
      r[key].push((performance.now() - t0) / 1000);
      r.position[key][position].push(r[key].at(-1));
    }
    if (round === runs - 1) {
      const compared = await execa('qemu-img', c.compareWith(out(`${i}-ours`), i), { reject: false });
      const { stdout: size } = await execa('du', ['-k', out(`${i}-ours`), out(`${i}-anchor`)]);
      const [ourKiB, anchorKiB] = size.split('\n').map((l) => Number(l.split('\t')[0]));
      r.check = { identical: compared.exitCode === 0, ourKiB, anchorKiB };
    }
    // At most one case's outputs (~2.4 GB) on the disk at a time.
    if (!values.keep) for (const { key } of methods) await rm(out(`${i}-${key}`), { force: true });
  }
}
if (!canDrop) console.log('(page cache not dropped: not root)');
console.log(values['drop-caches'] ? 'whole page cache dropped before every run (tools start cold)' : 'input evicted from the page cache before every run (tools warm)');
const { stdout: du } = await execa('du', ['-k', input]);
console.log(
  `input: ${input}, ${SIZE / 2 ** 30} GiB, ${(Number(du.split('\t')[0]) / 2 ** 20).toFixed(2)} GiB allocated; ${runs} rounds (each a different order of the three methods), medians; ` +
    `node -e 0 start${values['drop-caches'] ? ' (cold)' : ''} ${median(nodeStart).toFixed(2)} s${extraCerts ? ` (${median(nodeStartBare).toFixed(2)} s without NODE_EXTRA_CA_CERTS)` : ''}; load ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end`,
);
for (const [i, c] of cases.entries()) {
  const r = results[i];
  const ours = median(r.ours);
  const anchor = median(r.anchor);
  const anchorSync = median(r.anchorSync);
  // Paired: each round's ratio compares runs minutes apart at most, under the same load.
  const paired = median(r.ours.map((t, k) => t / r.anchorSync[k]));
  const { identical, ourKiB, anchorKiB } = r.check;
  console.log(
    `${c.name.padEnd(16)} diskwright ${ours.toFixed(2)} s (fsync) | qemu-img + sync ${anchorSync.toFixed(2)} s, ratio ${(ours / anchorSync).toFixed(2)}× (per round: median ${paired.toFixed(2)}×) | ` +
      `qemu-img ${anchor.toFixed(2)} s (no fsync), ratio ${(ours / anchor).toFixed(2)}× | allocated ${(ourKiB / 1024).toFixed(0)} MiB vs ${(anchorKiB / 1024).toFixed(0)} MiB | output ${identical ? 'identical' : 'DIFFERENT'}`,
  );
  // Where in the round a run came: on this VM the last of three is often the slow one (docs/qcow2.md,
  // "Speed": pages freed more than ~1 s earlier are handed back to the hypervisor).
  const byPosition = (key) => r.position[key].map((xs) => (xs.length ? median(xs).toFixed(2) : '-')).join('/');
  console.log(`${''.padEnd(16)} median by place in the round (first/second/third): diskwright ${byPosition('ours')} | qemu-img + sync ${byPosition('anchorSync')} | qemu-img ${byPosition('anchor')}`);
  console.log(`${''.padEnd(16)} runs: diskwright ${r.ours.map((t) => t.toFixed(2)).join(' ')} | qemu-img + sync ${r.anchorSync.map((t) => t.toFixed(2)).join(' ')} | qemu-img ${r.anchor.map((t) => t.toFixed(2)).join(' ')}`);
}
if (!values.keep) await rm(outDir, { recursive: true, force: true });
