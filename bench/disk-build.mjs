#!/usr/bin/env node
// Rootless builds vs the host tools, same run, interleaved rounds (min/median, ratio ours/host):
//   1. mkfs --from a 50k-file tarball (GNU tar, posix format) vs host `mke2fs -d` from the
//      unpacked directory (the anchor needs the tree on disk and root to keep its owners; ours
//      reads the archive in place, as any user)
//   2. `disk build` of the seed layout (dos: p1 ext3 filled from the tarball, extended + logical
//      swap) vs the pipeline it replaces: truncate + sfdisk + mke2fs -d into a file + dd
//      conv=notrunc,sparse into p1 + mkswap on p5 (through a loop-free offset: dd of the mkswap'd
//      area). Neither side fsyncs except diskwright's atomic rename (fsync of the output): noted.
//
//   node bench/disk-build.mjs [--runs 3] [--files 50000] [--keep]
//
// Run after `npm run build` (imports ../dist/). Needs host e2fsprogs, fdisk, tar, util-linux.
import { execa } from 'execa';
import { mkdir, rm, writeFile, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildDisk, closeE2fsPool, makeFilesystem, wasmDistDir, withFill } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    files: { type: 'string', default: '50000' },
    keep: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const files = Number(values.files);
const outDir = join(here, 'out', 'disk-build');
const tree = join(outDir, `tree-${files}`);
const tarball = join(outDir, `tree-${files}.tar`);
const MiB = 2 ** 20;
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, MKE2FS_CONFIG: join(wasmDistDir(), 'mke2fs.conf') };

async function sparse(path, size) {
  await rm(path, { force: true });
  const handle = await open(path, 'w');
  await handle.truncate(size);
  await handle.close();
}

async function makeTree() {
  if (existsSync(join(outDir, `.complete-${files}`))) return;
  await rm(tree, { recursive: true, force: true });
  const perDir = 100;
  for (let d = 0; d < Math.ceil(files / perDir); d++) {
    const dir = join(tree, `d${String(d).padStart(4, '0')}`);
    await mkdir(dir, { recursive: true });
    const jobs = [];
    for (let f = 0; f < perDir && d * perDir + f < files; f++) jobs.push(writeFile(join(dir, `f${f}.txt`), `file ${d}/${f} `.repeat(1 + ((d * 7 + f) % 40))));
    await Promise.all(jobs);
  }
  await execa('tar', ['--format=posix', '--numeric-owner', '-C', tree, '-cf', tarball, '.'], { env });
  await writeFile(join(outDir, `.complete-${files}`), '');
}

const run = (tool, args) => execa(tool, args, { env, stdin: 'ignore' });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function compare(name, rounds, { prepare = async () => {}, hostRun, oursRun }) {
  const times = { host: [], ours: [] };
  for (let i = 0; i < rounds; i++) {
    for (const who of i % 2 ? ['ours', 'host'] : ['host', 'ours']) {
      await prepare(who);
      await execa('sync');
      const start = performance.now();
      await (who === 'host' ? hostRun() : oursRun());
      times[who].push(performance.now() - start);
    }
  }
  const h = median(times.host);
  const o = median(times.ours);
  console.log(`${name.padEnd(46)} host median ${h.toFixed(0).padStart(6)} ms (min ${Math.min(...times.host).toFixed(0)})   diskwright median ${o.toFixed(0).padStart(6)} ms (min ${Math.min(...times.ours).toFixed(0)})   ratio ${(o / h).toFixed(2)}x  (${rounds} runs)`);
  return { name, ratio: o / h };
}

await mkdir(outDir, { recursive: true });
console.log(`preparing a ${files}-file tree and its tarball in ${outDir} …`);
await makeTree();
const results = [];
const FS_BYTES = 1024 * MiB;

// 1. mkfs --from the tarball vs mke2fs -d from the unpacked tree.
const hostImg = join(outDir, 'host.img');
const oursImg = join(outDir, 'ours.img');
const mkfsArgs = ['-q', '-F', '-t', 'ext4', '-N', String(files + 1000)];
results.push(
  await compare(`mkfs --from tarball vs mke2fs -d dir, ${files} files`, runs, {
    prepare: async (who) => (who === 'host' ? sparse(hostImg, FS_BYTES) : rm(oursImg, { force: true })),
    hostRun: () => run('mke2fs', [...mkfsArgs, '-d', tree, hostImg]),
    oursRun: () => withFill(oursImg, { from: tarball }, { type: 'ext4', size: FS_BYTES, force: true, extendedOptions: [] }, (o) => makeFilesystem(oursImg, o)),
  }),
);

// 2. disk build of the seed layout vs sfdisk + mke2fs -d + dd + mkswap.
const script = 'label: dos\nlabel-id: 0x20130b0b\nstart=2048, size=2097152, type=83, bootable\ntype=5\ntype=82\n';
const diskBytes = (2048 + 2097152 + 2048 + 65536) * 512 + 2048 * 512;
const hostDisk = join(outDir, 'host-disk.img');
const oursDisk = join(outDir, 'ours-disk.img');
const rootImg = join(outDir, 'host-root.ext3');
const swapImg = join(outDir, 'host-swap.img');
results.push(
  await compare(`disk build (seed layout) vs sfdisk+mke2fs+dd+mkswap`, runs, {
    prepare: async () => {
      for (const p of [hostDisk, oursDisk, rootImg, swapImg]) await rm(p, { force: true });
    },
    hostRun: async () => {
      await sparse(hostDisk, diskBytes);
      await execa('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', hostDisk], { env, input: script });
      await sparse(rootImg, 2097152 * 512);
      await run('mke2fs', ['-q', '-F', '-t', 'ext3', '-d', tree, rootImg]);
      await run('dd', [`if=${rootImg}`, `of=${hostDisk}`, 'bs=1M', 'seek=1', 'conv=notrunc,sparse', 'status=none']);
      const swapSectors = (diskBytes / 512) - (2048 + 2097152 + 2048);
      await sparse(swapImg, swapSectors * 512);
      await run('mkswap', ['-q', swapImg]);
      await run('dd', [`if=${swapImg}`, `of=${hostDisk}`, 'bs=512', `seek=${2048 + 2097152 + 2048}`, 'count=8', 'conv=notrunc', 'status=none']);
    },
    oursRun: () => buildDisk(oursDisk, { size: diskBytes, layout: script, filesystems: [{ partition: 1, type: 'ext3', from: tarball }, { partition: 5, type: 'swap' }] }),
  }),
);

await closeE2fsPool();
if (!values.keep) for (const p of [hostImg, oursImg, hostDisk, oursDisk, rootImg, swapImg]) await rm(p, { force: true });
console.log('note: diskwright fsyncs its output before the atomic rename; the host pipeline does not fsync.');
console.log(`target: mkfs --from ratio ≤ 1.5 — ${results[0].ratio <= 1.5 ? 'met' : 'NOT met'}`);
