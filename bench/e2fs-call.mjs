#!/usr/bin/env node
// Per-call cost of an e2fsprogs tool through diskwright against host e2fsprogs, same run,
// interleaved, medians:
//   e2fsck -V          host | fresh `node` running the tool (start + compile + run) | warm
//   dumpe2fs -h IMAGE  host | fresh `node dist/cli/main.js info IMAGE` (the CLI)   | warm
// "warm" is a call through the e2fsprogs-suite helper server (scripts/e2fsprogs-suite/): a small C
// wrapper asks one long-lived Node process whose workers keep the compiled modules. The image is
// an 8 MiB ext4 made by host mke2fs. Nothing is written, so fsync plays no part.
//
//   node bench/e2fs-call.mjs [--runs 15]
//
// Run after `npm run build`. Needs host e2fsprogs (/usr/sbin) and gcc.
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const suite = join(repo, 'scripts', 'e2fsprogs-suite');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const runs = Number(values.runs);
const outDir = join(here, 'out', 'e2fs-call');
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

rmSync(outDir, { recursive: true, force: true });
mkdirSync(join(outDir, 'bin'), { recursive: true });
const image = join(outDir, 'small.img');
await execa('mke2fs', ['-q', '-F', '-t', 'ext4', image, '8M'], { env });
const socket = join(outDir, 's.sock');
await execa('gcc', ['-O2', `-DDW_SOCKET="${socket}"`, '-o', join(outDir, 'bin', 'e2fsck'), join(suite, 'wrapper.c')]);
copyFileSync(join(outDir, 'bin', 'e2fsck'), join(outDir, 'bin', 'dumpe2fs'));
const server = spawn(process.execPath, [join(suite, 'server.mjs'), socket, '--workers', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolve) => createInterface({ input: server.stdout }).once('line', resolve));

// A script file, not `node -e`: the pool's workers inherit execArgv, and --input-type breaks them.
const freshTool = join(outDir, 'fresh-e2fsck-V.mjs');
writeFileSync(
  freshTool,
  `import { runE2fsTool, closeE2fsPool } from ${JSON.stringify(join(repo, 'dist', 'index.js'))};
const r = await runE2fsTool('e2fsck', ['-V']);
await closeE2fsPool();
process.exitCode = r.exitCode;
`,
);
const variants = {
  'e2fsck -V': {
    host: ['e2fsck', ['-V']],
    fresh: [process.execPath, [freshTool]],
    warm: [join(outDir, 'bin', 'e2fsck'), ['-V']],
  },
  'dumpe2fs -h (8 MiB ext4)': {
    host: ['dumpe2fs', ['-h', image]],
    fresh: [process.execPath, [join(repo, 'dist', 'cli', 'main.js'), 'info', image]],
    warm: [join(outDir, 'bin', 'dumpe2fs'), ['-h', image]],
  },
};

async function timed([file, args]) {
  const start = performance.now();
  const result = await execa(file, args, { env, reject: false, stdin: 'ignore' });
  const ms = performance.now() - start;
  if (result.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

try {
  for (const [name, commands] of Object.entries(variants)) {
    await timed(commands.warm); // the server compiles the module on its first call
    const times = { host: [], fresh: [], warm: [] };
    const order = Object.keys(times);
    for (let i = 0; i < runs; i++) {
      for (const who of i % 2 ? [...order].reverse() : order) times[who].push(await timed(commands[who]));
    }
    const [h, f, w] = order.map((who) => median(times[who]));
    console.log(
      `${name.padEnd(26)} host ${h.toFixed(1).padStart(6)} ms   fresh node ${f.toFixed(0).padStart(5)} ms (${(f / h).toFixed(1)}x)   ` +
        `warm via helper ${w.toFixed(1).padStart(6)} ms (${(w / h).toFixed(1)}x)   medians of ${runs}`,
    );
  }
} finally {
  server.kill('SIGTERM');
}
