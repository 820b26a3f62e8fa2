#!/usr/bin/env node
// qcow2 conversions, diskwright against qemu-img in the same run:
//   raw → qcow2 (`convert -O qcow2`), raw → compressed qcow2 (`-c`), qcow2 → raw.
//   extract of partition 1 from a qcow2 (against qemu-img convert of that byte range).
// Input: a 2 GiB sparse raw image (one dos partition from sector 2048) with 384 MiB of data (half random, half text) in 24 islands,
// made once under bench/out. Page cache dropped before every timed run when we may (root);
// rounds interleave the methods. diskwright fsyncs its output before the rename; qemu-img does
// not, so it is also timed followed by `sync FILE` (equal durability). Prints medians and ratios.
//
//   node bench/qcow2.mjs [--runs 3] [--keep]
//
// Run after `npm run build`.
import { execa } from 'execa';
import { closeSync, ftruncateSync, openSync, writeSync, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } } });
const runs = Number(values.runs);
const outDir = join(here, 'out', 'qcow2');
const cli = join(here, '..', 'dist', 'cli', 'main.js');
const input = join(outDir, 'in.raw');
const SIZE = 2 * 2 ** 30;

await mkdir(outDir, { recursive: true });
if (!existsSync(input)) {
  const fd = openSync(input, 'w');
  ftruncateSync(fd, SIZE);
  const text = Buffer.from('diskwright qcow2 bench: Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(102_400)).subarray(0, 8 * 2 ** 20);
  for (let i = 0; i < 24; i++) {
    const at = i * (SIZE / 24);
    writeSync(fd, randomBytes(8 * 2 ** 20), 0, 8 * 2 ** 20, at);
    writeSync(fd, text, 0, text.length, at + 16 * 2 ** 20);
  }
  closeSync(fd);
  // One partition from sector 2048 to the end, so `extract` has something to take out.
  await execa('sfdisk', ['--quiet', input], { input: 'label: dos\nstart=2048, type=83\n', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
}
const p1Offset = 2048 * 512;
const p1Length = SIZE - p1Offset;

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
await execa('qemu-img', ['convert', '-O', 'qcow2', input, qemuQcow]);

const out = (name) => join(outDir, name);
const cases = [
  {
    name: 'raw → qcow2',
    ours: (f) => execa(process.execPath, [cli, 'convert', input, f, '-O', 'qcow2', '--force']),
    anchor: (f) => execa('qemu-img', ['convert', '-O', 'qcow2', input, f]),
  },
  {
    name: 'raw → qcow2 -c',
    ours: (f) => execa(process.execPath, [cli, 'convert', input, f, '-O', 'qcow2', '-c', '--force']),
    anchor: (f) => execa('qemu-img', ['convert', '-c', '-O', 'qcow2', input, f]),
  },
  {
    name: 'qcow2 → raw',
    ours: (f) => execa(process.execPath, [cli, 'convert', qemuQcow, f, '--format', 'qcow2', '--force']),
    anchor: (f) => execa('qemu-img', ['convert', '-O', 'raw', qemuQcow, f]),
  },
  {
    name: 'extract p1 qcow2',
    ours: (f) => execa(process.execPath, [cli, 'extract', qemuQcow, '-p', '1', '-o', f, '--format', 'qcow2', '--force']),
    anchor: (f) => execa('qemu-img', ['convert', '--image-opts', `driver=raw,offset=${p1Offset},size=${p1Length},file.driver=qcow2,file.file.filename=${qemuQcow}`, '-O', 'raw', f]),
    compareWith: (f) => ['compare', '-f', 'raw', '-F', 'raw', f, out('3-anchor')],
  },
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = cases.map(() => ({ ours: [], anchor: [], anchorSync: [] }));
for (let round = 0; round < runs; round++) {
  for (const [i, c] of cases.entries()) {
    const r = results[i];
    for (const [key, fn, sync] of [['ours', c.ours, false], ['anchor', c.anchor, false], ['anchorSync', c.anchor, true]]) {
      const file = out(`${i}-${key}`);
      await rm(file, { force: true });
      await dropCaches();
      const t0 = performance.now();
      await fn(file);
      if (sync) await execa('sync', [file]);
      r[key].push((performance.now() - t0) / 1000);
    }
  }
}
if (!canDrop) console.log('(page cache not dropped: not root)');
console.log(`input: ${input}, ${SIZE / 2 ** 30} GiB, 384 MiB data; ${runs} runs, medians`);
for (const [i, c] of cases.entries()) {
  const r = results[i];
  const ours = median(r.ours);
  const anchor = median(r.anchor);
  const anchorSync = median(r.anchorSync);
  const ourCheck = await execa('qemu-img', c.compareWith ? c.compareWith(out(`${i}-ours`)) : ['compare', out(`${i}-ours`), c.name === 'qcow2 → raw' ? qemuQcow : input], { reject: false });
  console.log(
    `${c.name.padEnd(16)} diskwright ${ours.toFixed(2)} s (fsync) | qemu-img ${anchor.toFixed(2)} s (no fsync), ratio ${(ours / anchor).toFixed(2)}× | ` +
      `qemu-img + sync ${anchorSync.toFixed(2)} s, ratio ${(ours / anchorSync).toFixed(2)}× | output ${ourCheck.exitCode === 0 ? 'identical' : 'DIFFERENT'}`,
  );
}
if (!values.keep) await rm(outDir, { recursive: true, force: true });
