// Benchmark: CLI start-up. Runs `diskwright --help`, `partitions`, `info`, `fs ls`, `fs cat` and
// `fs stat` on a small disk image (MBR, one 32 MiB ext4 partition) as whole processes, interleaved
// with the anchor `node -e 0` (the floor any Node CLI pays), and prints medians and the ratio to
// the anchor from the same run. Target: every row ≤ 2.5× (wall time). On Linux it also prints the
// mean CPU time (user + sys, all threads) per start and its ratio: on a loaded machine wall time
// mostly measures the wait for a core, CPU time what a start costs. Needs `npm run build`.
// The rows execute the `bin` file as users do (its shebang starts node without
// NODE_EXTRA_CA_CERTS, see scripts/bundle-cli.mjs); the anchor runs in the environment as it is.
// Where that variable is set (this project's sandbox, many CI images) node parses its CA bundle
// at every start, so the bench also times `node -e 0` without it and prints the ratio to that.
// Usage: node bench/cli-start.mjs [--runs N]   (default 15; at least 10 for a quoted figure)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const runsIndex = process.argv.indexOf('--runs');
const RUNS = runsIndex === -1 ? Number(process.env.BENCH_RUNS ?? 15) : Number(process.argv[runsIndex + 1]);
const TARGET = 2.5;
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'diskwright-bench-cli-start-'));

const { NODE_EXTRA_CA_CERTS: extraCerts, ...bareEnv } = process.env;

/** Runs node with `args`, or the `bin` itself when args[0] is it (as users do: the shebang counts). */
function run(args, input, env = process.env) {
  const [file, rest] = args[0] === cli ? [cli, args.slice(1)] : [process.execPath, args];
  const r = spawnSync(file, rest, { encoding: 'utf8', input, env });
  if (r.status !== 0) throw new Error(`${file} ${rest.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}

/** CPU time of this process's waited-for children, in ms (Linux /proc: cutime + cstime ticks). */
const HAS_PROC = existsSync('/proc/self/stat');
function childCpuMs() {
  if (!HAS_PROC) return 0;
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // Fields 16 and 17 of stat(5), here at 13 and 14 (the text after the command name); 100 Hz ticks.
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

try {
  const disk = join(dir, 'disk.img');
  const part = join(dir, 'p1.ext4');
  const motd = join(dir, 'motd');
  writeFileSync(motd, 'hello from the bench\n');
  run([cli, 'mkfs', part, '--type', 'ext4', '--size', '32M']);
  run([cli, 'fs', 'mkdir', part, '/etc']);
  run([cli, 'fs', 'put', part, motd, '/etc/motd']);
  // A disk image: MBR with partition 1 at sector 2048 holding the filesystem.
  run([cli, 'create', disk, '--size', '40M']);
  const mbr = Buffer.alloc(512);
  mbr.writeUInt8(0x83, 446 + 4);
  mbr.writeUInt32LE(2048, 446 + 8);
  mbr.writeUInt32LE((32 << 20) / 512, 446 + 12);
  mbr.writeUInt16LE(0xaa55, 510);
  run(['-e', `const fs=require('fs');const d=fs.openSync(${JSON.stringify(disk)},'r+');fs.writeSync(d,Buffer.from('${mbr.toString('base64')}','base64'),0,512,0);const s=fs.readFileSync(${JSON.stringify(part)});fs.writeSync(d,s,0,s.length,2048*512);fs.closeSync(d);`]);

  const rows = [
    ['--help', [cli, '--help']],
    ['partitions', [cli, 'partitions', disk]],
    ['info -p 1', [cli, 'info', disk, '-p', '1']],
    ['fs ls -p 1', [cli, 'fs', 'ls', disk, '/etc', '-p', '1']],
    ['fs cat -p 1', [cli, 'fs', 'cat', disk, '/etc/motd', '-p', '1']],
    ['fs stat -p 1', [cli, 'fs', 'stat', disk, '/etc/motd', '-p', '1']],
  ];
  const anchor = [];
  const bare = [];
  const ours = rows.map(() => []);
  let anchorCpu = 0;
  const oursCpu = rows.map(() => 0);
  const timed = (args, env) => {
    const cpu0 = childCpuMs();
    const t0 = performance.now();
    run(args, undefined, env);
    return [performance.now() - t0, childCpuMs() - cpu0];
  };
  for (let i = 0; i < RUNS; i++) {
    // Interleaved: each round times the anchor and every row, so load changes hit all alike.
    for (let r = 0; r < rows.length; r++) {
      const [anchorMs, anchorCpuMs] = timed(['-e', '0']);
      anchor.push(anchorMs);
      anchorCpu += anchorCpuMs;
      if (extraCerts !== undefined) bare.push(timed(['-e', '0'], bareEnv)[0]);
      const [ms, cpuMs] = timed(rows[r][1]);
      ours[r].push(ms);
      oursCpu[r] += cpuMs;
    }
  }
  const base = median(anchor);
  const baseCpu = anchorCpu / (RUNS * rows.length);
  const bareBase = bare.length ? median(bare) : undefined;
  console.log(`cli start-up, ${RUNS} runs each, wall medians; anchor \`node -e 0\` ${base.toFixed(0)} ms${HAS_PROC ? `, CPU ${baseCpu.toFixed(0)} ms (mean)` : ''} (target ≤ ${TARGET}× wall)`);
  if (bareBase !== undefined) console.log(`NODE_EXTRA_CA_CERTS is set: \`node -e 0\` without it ${bareBase.toFixed(0)} ms (the bin starts node without it; last column: ratio to that)`);
  console.log(`${'command'.padEnd(14)} ${'ours ms'.padStart(8)} ${'node -e 0'.padStart(10)} ${'ratio'.padStart(6)}${HAS_PROC ? `${'cpu ms'.padStart(9)} ${'cpu ratio'.padStart(9)}` : ''}${bareBase !== undefined ? ' × bare node' : ''}`);
  let over = 0;
  for (let r = 0; r < rows.length; r++) {
    const ms = median(ours[r]);
    const ratio = ms / base;
    const cpu = oursCpu[r] / RUNS;
    if (ratio > TARGET) over++;
    const cpuColumns = HAS_PROC ? `${cpu.toFixed(0).padStart(9)} ${(cpu / baseCpu).toFixed(2).padStart(8)}×` : '';
    const bareColumn = bareBase !== undefined ? `${(ms / bareBase).toFixed(2).padStart(11)}×` : '';
    console.log(`${rows[r][0].padEnd(14)} ${ms.toFixed(0).padStart(8)} ${base.toFixed(0).padStart(10)} ${ratio.toFixed(2).padStart(5)}×${cpuColumns}${bareColumn}${ratio > TARGET ? '  over target' : ''}`);
  }
  if (over) console.log(`${over} row(s) above ${TARGET}×`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
