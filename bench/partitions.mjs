// Benchmark: reading a partition table. Compares `diskwright partitions --json` with the anchor
// `sfdisk --json` (util-linux) on the same images, as whole processes, plus the in-process
// readPartitionTable() time. Prints medians of several runs and the ratio. Needs `npm run build`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { readPartitionTable } from '../dist/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'diskwright-bench-partitions-'));

function image(name, size, script) {
  const path = join(dir, name);
  writeFileSync(path, '');
  truncateSync(path, size);
  execFileSync('sfdisk', ['--quiet', path], { input: script, env });
  return path;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeProcess(cmd, args) {
  const times = [];
  let out = '';
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
    out = r.stdout;
  }
  return { ms: median(times), out };
}

async function timeApi(path) {
  const times = [];
  for (let i = 0; i < RUNS * 4; i++) {
    const t0 = performance.now();
    await readPartitionTable(path);
    times.push(performance.now() - t0);
  }
  return median(times);
}

try {
  const images = {
    'dos 8G article layout (p1, extended, logical swap)': image('article.img', 8 * 1024 ** 3, 'label: dos\nstart=2048, size=15986688, type=83, bootable\nstart=15990782, size=784386, type=5\nstart=15990784, size=784384, type=82\n'),
    'dos 8 logicals': image('logicals.img', 1024 ** 3, `label: dos\nstart=2048, size=2048, type=83\nstart=8192, type=5\n${Array.from({ length: 8 }, (_v, i) => `start=${20480 + i * 20480}, size=10000, type=83`).join('\n')}\n`),
    'gpt 128 entries, 6 partitions': image('gpt.img', 4 * 1024 ** 3, `label: gpt\n${Array.from({ length: 6 }, (_v, i) => `size=100000, name="part ${i}"`).join('\n')}\n`),
  };
  console.log(`medians of ${RUNS} runs (process start included for both CLIs)`);
  for (const [label, path] of Object.entries(images)) {
    const ours = timeProcess(process.execPath, [cli, 'partitions', path, '--json']);
    const anchor = timeProcess('sfdisk', ['--json', path]);
    const api = await timeApi(path);
    const same = ours.out === anchor.out ? 'identical output' : 'OUTPUT DIFFERS';
    console.log(`${label}:`);
    console.log(`  diskwright partitions --json ${ours.ms.toFixed(1)} ms | sfdisk --json ${anchor.ms.toFixed(1)} ms | ratio ${(ours.ms / anchor.ms).toFixed(2)}x | ${same}`);
    console.log(`  readPartitionTable() in-process ${(api * 1000).toFixed(0)} µs`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
