#!/usr/bin/env node
// qcow2 conversions, diskwright against qemu-img in the same run (issue 10):
//   raw → qcow2 (`convert -O qcow2`), raw → compressed qcow2 (`-c`), qcow2 → raw, and extract of
//   partition 1 from a qcow2 (against qemu-img convert of that byte range).
// Input: a populated seed-like disk (fixtures/make-seed.mjs): 2 GiB sparse MBR image, p1 ext3 with
// ~768 MiB of deterministic files (small text-like files, binaries, zero runs), a logical swap at
// the end; about 40 % of the disk holds data, the rest are holes. Made once under
// bench/out/qcow2-input (kept between runs). The page cache is dropped before every timed run when
// we may (root); rounds interleave the methods. diskwright fsyncs its output before the rename;
// qemu-img does not (cache=unsafe for the output), so it is timed twice: alone, and followed by
// `sync FILE` (equal durability, the target's anchor). Prints medians and both ratios, and the
// cold start of `node -e 0`, which every diskwright run pays and qemu-img does not (when
// NODE_EXTRA_CA_CERTS is set, as in the project's sandbox, also without it: node then reads and
// parses that CA bundle at every start, 0.05–0.1 s here; the timed runs keep the environment).
// Figures and what the time is made of: docs/qcow2.md, "Speed".
//
//   node bench/qcow2.mjs [--runs 3] [--keep] [--data-size 768M]
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
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false }, 'data-size': { type: 'string', default: '768M' } } });
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
async function dropCaches() {
  await execa('sync');
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3');
  } catch {
    canDrop = false;
  }
}

const qemuQcow = join(outDir, 'qemu.qcow2');
await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', input, qemuQcow]);

const out = (name) => join(outDir, name);
const cases = [
  {
    name: 'raw → qcow2',
    ours: (f) => execa(process.execPath, [cli, 'convert', input, f, '-O', 'qcow2', '--format', 'raw']),
    anchor: (f) => execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', input, f]),
    compareWith: (f) => ['compare', '-f', 'qcow2', '-F', 'raw', f, input],
  },
  {
    name: 'raw → qcow2 -c',
    ours: (f) => execa(process.execPath, [cli, 'convert', input, f, '-O', 'qcow2', '-c', '--format', 'raw']),
    anchor: (f) => execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', input, f]),
    compareWith: (f) => ['compare', '-f', 'qcow2', '-F', 'raw', f, input],
  },
  {
    name: 'qcow2 → raw',
    ours: (f) => execa(process.execPath, [cli, 'convert', qemuQcow, f, '--format', 'qcow2']),
    anchor: (f) => execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qemuQcow, f]),
    compareWith: (f) => ['compare', '-f', 'raw', '-F', 'raw', f, input],
  },
  {
    name: 'extract p1 qcow2',
    ours: (f) => execa(process.execPath, [cli, 'extract', qemuQcow, '-p', '1', '-o', f, '--format', 'qcow2']),
    anchor: (f) => execa('qemu-img', ['convert', '--image-opts', `driver=raw,offset=${p1Offset},size=${p1Length},file.driver=qcow2,file.file.filename=${qemuQcow}`, '-O', 'raw', f]),
    compareWith: (f, i) => ['compare', '-f', 'raw', '-F', 'raw', f, out(`${i}-anchor`)],
  },
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = cases.map(() => ({ ours: [], anchor: [], anchorSync: [] }));
const loadAtStart = loadavg()[0];
const nodeStart = [];
const nodeStartBare = [];
const extraCerts = process.env.NODE_EXTRA_CA_CERTS !== undefined;
const { NODE_EXTRA_CA_CERTS: _certs, ...bareEnv } = process.env;
for (let round = 0; round < runs; round++) {
  await dropCaches();
  let t0 = performance.now();
  await execa(process.execPath, ['-e', '0']);
  nodeStart.push((performance.now() - t0) / 1000);
  if (extraCerts) {
    await dropCaches();
    t0 = performance.now();
    await execa(process.execPath, ['-e', '0'], { env: bareEnv, extendEnv: false });
    nodeStartBare.push((performance.now() - t0) / 1000);
  }
  for (const [i, c] of cases.entries()) {
    const r = results[i];
    for (const [key, fn, sync] of [['ours', c.ours, false], ['anchor', c.anchor, false], ['anchorSync', c.anchor, true]]) {
      const file = out(`${i}-${key}`);
      await rm(file, { force: true });
      await dropCaches();
      t0 = performance.now();
      await fn(file);
      if (sync) await execa('sync', [file]);
      r[key].push((performance.now() - t0) / 1000);
    }
  }
}
if (!canDrop) console.log('(page cache not dropped: not root)');
const { stdout: du } = await execa('du', ['-k', input]);
console.log(`input: ${input}, ${SIZE / 2 ** 30} GiB, ${(Number(du.split('\t')[0]) / 2 ** 20).toFixed(2)} GiB allocated; ${runs} runs, medians; node -e 0 cold start ${median(nodeStart).toFixed(2)} s${extraCerts ? ` (${median(nodeStartBare).toFixed(2)} s without NODE_EXTRA_CA_CERTS)` : ''}; load ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end`);
for (const [i, c] of cases.entries()) {
  const r = results[i];
  const ours = median(r.ours);
  const anchor = median(r.anchor);
  const anchorSync = median(r.anchorSync);
  const ourCheck = await execa('qemu-img', c.compareWith(out(`${i}-ours`), i), { reject: false });
  const { stdout: size } = await execa('du', ['-k', out(`${i}-ours`), out(`${i}-anchor`)]);
  const [ourKiB, anchorKiB] = size.split('\n').map((l) => Number(l.split('\t')[0]));
  console.log(
    `${c.name.padEnd(16)} diskwright ${ours.toFixed(2)} s (fsync) | qemu-img + sync ${anchorSync.toFixed(2)} s, ratio ${(ours / anchorSync).toFixed(2)}× | ` +
      `qemu-img ${anchor.toFixed(2)} s (no fsync), ratio ${(ours / anchor).toFixed(2)}× | allocated ${(ourKiB / 1024).toFixed(0)} MiB vs ${(anchorKiB / 1024).toFixed(0)} MiB | output ${ourCheck.exitCode === 0 ? 'identical' : 'DIFFERENT'}`,
  );
}
if (!values.keep) await rm(outDir, { recursive: true, force: true });
