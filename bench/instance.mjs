// Creating an instance disk from the 8 GiB seed-like template (p1 of fixtures/generated/seed.img,
// ~1.5 GiB of data) grown to 10 GiB — diskwright's `instance create --disk-only` pipeline
// (in-process: sparse copy grown in one pass, WASM e2fsck -fp, WASM resize2fs, in-image rendering,
// WASM e2fsck -fn) versus, in the same run:
//   host:    the best host-tool pipeline — cp --sparse=always, truncate, e2fsck -fp, resize2fs,
//            debugfs -w edits, e2fsck -fn;
//   article: the article's steps — plain cp, qemu-img resize, fsck -fy, resize2fs, (mount+sed needs
//            root: debugfs -w edits instead), fsck -pv.
// Thin qcow2 instances (`--format qcow2`: an overlay over the template, the e2fs steps writing into
// it; all runs in one images directory, their instances kept until the end: run 1 is the
// template's first instance — template check, resize2fs, publishing the shared grown layer,
// recording the read set — later runs the Nth, over that layer with the template's metadata read
// ahead; docs/instance.md) against the same host pipeline (target ≤ 0.1× its time, ≤ 8 MiB
// allocated per instance; the shared layer is printed once) and against
// `qemu-img create -f qcow2 -b TEMPLATE -F raw` — alone (no identity inside: a lower bound) and
// with the host edits, which cannot open a qcow2 (no qemu-nbd rootless, no guestfish here): the raw
// host pipeline, then `qemu-img convert -O qcow2 -B TEMPLATE` to keep only what differs.
// The thin create's time is mostly its final `e2fsck -fn` (~0.07 s of CPU: pass 1 steps over the
// grown ext3's runs of all-zero unused inodes and passes 4/5 take unused runs from the bitmaps —
// the e2fsck patches in wasm/lib/ — and the template's unused inode tables are holes, read as
// zeros without a pread) plus the render and customize sessions (no open check: the final check
// gates the private temp) — docs/instance.md, "Thin instances".
// Also the CLI in a fresh process per run (module loading included). Prints medians of several
// runs (variants interleaved, `sync` before each, so load swings hit all of them) and the ratios.
// Target: diskwright ≤ 1.0× host.
// Usage: npm run build && node fixtures/make-seed.mjs && node bench/instance.mjs [--runs 3] [--disk 10G]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { closeE2fsPool, createInstance, defaultSteps, extractPartition, parseSize, releaseThinInstance } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const RUNS = Number(opt('runs', '3'));
const DISK = opt('disk', '10G');
const DISK_BYTES = parseSize(DISK);
const seed = fileURLToPath(new URL('../fixtures/generated/seed.img', import.meta.url));
if (!existsSync(seed)) {
  console.error(`missing ${seed}: run \`node fixtures/make-seed.mjs\` first`);
  process.exit(1);
}
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
const sh = (cmd, argv, options = {}) => execFileSync(cmd, argv, { env, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28, ...options });
let lastOutput = '';
const shExit = (cmd, argv) => {
  try {
    lastOutput = sh(cmd, argv).toString();
    return 0;
  } catch (error) {
    lastOutput = `${error.stdout ?? ''}${error.stderr ?? ''}`;
    return error.status ?? -1;
  }
};

const work = mkdtempSync(join(tmpdir(), 'dw-bench-instance-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
// The templates' read sets (src/instance/prefetch.ts) start empty: the first thin run records one.
process.env.DISKWRIGHT_CACHE_DIR = join(work, 'cache');

// The template: p1 of the seed, with the article's placeholder files and a manifest.
const template = join(work, 'debian-tmpl');
await extractPartition(seed, 1, template);
const FILES = {
  '/etc/hostname': 'HOSTNAME-TMPL\n',
  '/etc/resolv.conf': 'nameserver NAMESERVER-TMPL\n',
  '/etc/network/interfaces':
    'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address ADDRESS-TMPL\n    netmask NETMASK-TMPL\n    gateway GATEWAY-TMPL\n',
};
const VALUES = {
  'ADDRESS-TMPL': '192.168.1.197',
  'NETMASK-TMPL': '255.255.255.0',
  'GATEWAY-TMPL': '192.168.1.1',
  'HOSTNAME-TMPL': 'jgoulah.linux.bogus',
  'NAMESERVER-TMPL': '192.168.1.101',
};
const render = (text) => Object.entries(VALUES).reduce((t, [k, v]) => t.split(k).join(v), text);

/** debugfs -w command file replacing each placeholder file by `content(path)`. */
function debugfsEdits(image, content, tag, mkdirs = false) {
  // Only when preparing the template: debugfs 1.47's mkdir of an existing directory leaks an inode.
  const lines = mkdirs ? ['mkdir /etc', 'mkdir /etc/network'] : [];
  for (const [path, text] of Object.entries(FILES)) {
    const host = join(work, `${tag}-${path.replaceAll('/', '_')}`);
    writeFileSync(host, content(text));
    lines.push(`rm ${path}`, `write ${host} ${path}`);
  }
  const cmdFile = join(work, `${tag}.debugfs`);
  writeFileSync(cmdFile, `${lines.join('\n')}\n`);
  sh('debugfs', ['-w', '-f', cmdFile, image]);
}
debugfsEdits(template, (t) => t, 'template', true);
const kernel = join(work, 'vmlinuz-6.1.0-bench');
writeFileSync(kernel, 'kernel');
writeFileSync(
  `${template}.diskwright.json`,
  JSON.stringify({
    version: 1,
    createdAt: new Date().toISOString(),
    source: { disk: seed, partition: 1, start: 2048, sectors: 15986688, sectorSize: 512 },
    filesystem: { kind: 'ext3', uuid: '5eed0000-0000-4000-8000-000000000001', blockSize: 4096, blocksCount: 1998336 },
    operations: [{ name: 'hostname', status: 'applied' }],
    files: [
      { path: '/etc/hostname', placeholders: ['HOSTNAME-TMPL'] },
      { path: '/etc/resolv.conf', placeholders: ['NAMESERVER-TMPL'] },
      { path: '/etc/network/interfaces', placeholders: ['ADDRESS-TMPL', 'NETMASK-TMPL', 'GATEWAY-TMPL'] },
    ],
    kernel: { version: '6.1.0-bench', kernel },
  }),
);
if (shExit('e2fsck', ['-fn', template]) !== 0) throw new Error('template is not fsck-clean');
const allocated = (path) => statSync(path).blocks * 512;
const GiB = 1024 ** 3;
console.log(`template ${template}: ${(statSync(template).size / GiB).toFixed(2)} GiB, ${(allocated(template) / GiB).toFixed(2)} GiB allocated; instance disk ${DISK}`);

const unreachable = async () => ({ exitCode: 127, stdout: '', stderr: 'virsh: not used in the bench' });
let run = 0;

async function diskwright() {
  const dir = join(work, `dw${run}`);
  sh('mkdir', [dir]);
  const started = performance.now();
  const result = await createInstance({
    request: { ip: VALUES['ADDRESS-TMPL'], host: 'jgoulah', template, imagesDir: dir, disk: DISK },
    diskOnly: true,
    steps: defaultSteps,
    runner: unreachable,
  });
  const seconds = (performance.now() - started) / 1000;
  const out = join(dir, 'jgoulah-disk0');
  verify(out);
  const steps = Object.fromEntries(result.steps.map((s) => [s.step, s.seconds]));
  rmSync(dir, { recursive: true, force: true });
  return { seconds, steps };
}

/** The same through the CLI in a fresh process (module loading and worker start-up included). */
function diskwrightCli() {
  const dir = join(work, `cli${run}`);
  sh('mkdir', [dir]);
  const started = performance.now();
  sh(process.execPath, [cli, 'instance', 'create', VALUES['ADDRESS-TMPL'], 'jgoulah', '--template', template, '--images-dir', dir, '--disk', DISK, '--disk-only'], {
    cwd: work,
    env: { ...env, XDG_CONFIG_HOME: work, DISKWRIGHT_VIRSH: join(work, 'no-virsh'), DISKWRIGHT_VIRT_INSTALL: join(work, 'no-virt-install') },
  });
  const seconds = (performance.now() - started) / 1000;
  verify(join(dir, 'jgoulah-disk0'));
  rmSync(dir, { recursive: true, force: true });
  return { seconds };
}

/**
 * `instance create --format qcow2 --disk-only` in-process: a thin overlay. All runs use one images
 * directory and their instances live side by side until the end (as a host's VMs do), so run 1
 * makes the first instance of the template (template check, resize2fs, the shared grown layer,
 * the read set) and later runs the Nth (over that layer, the template's metadata read ahead).
 */
const thinImages = join(work, 'thin-images');
const thinDisks = [];
async function diskwrightThin() {
  sh('mkdir', ['-p', thinImages]);
  const host = `jgoulah${run}`;
  const started = performance.now();
  const result = await createInstance({
    request: { ip: VALUES['ADDRESS-TMPL'], host, template, imagesDir: thinImages, disk: DISK, format: 'qcow2' },
    diskOnly: true,
    steps: defaultSteps,
    runner: unreachable,
  });
  const seconds = (performance.now() - started) / 1000;
  const out = join(thinImages, `${host}-disk0.qcow2`);
  thinDisks.push(out);
  const bytes = allocated(out);
  verifyQcow2(out, `${host}.linux.bogus`);
  const steps = Object.fromEntries(result.steps.map((s) => [s.step, s.seconds]));
  return { seconds, steps, bytes };
}

/** Bytes of the shared grown layers (one per template and size), paid once by the first instance. */
function sharedLayerBytes() {
  const dir = join(thinImages, '.diskwright-bases');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.qcow2')).reduce((n, f) => n + allocated(join(dir, f)), 0) : 0;
}

/** `qemu-img create -f qcow2 -b TEMPLATE -F raw`: the overlay alone, no identity inside. */
function qemuOverlayOnly() {
  const out = join(work, `qemu-overlay${run}.qcow2`);
  const started = performance.now();
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', template, '-F', 'raw', out, String(DISK_BYTES)]);
  const seconds = (performance.now() - started) / 1000;
  const bytes = allocated(out);
  rmSync(out, { force: true });
  return { seconds, bytes };
}

/** The host edits cannot open a qcow2: the raw host pipeline, then only what differs into an overlay. */
function hostThin() {
  const edited = join(work, `hostthin${run}.raw`);
  const out = join(work, `hostthin${run}.qcow2`);
  const started = performance.now();
  sh('cp', ['--sparse=always', template, edited]);
  sh('truncate', ['-s', String(DISK_BYTES), edited]);
  if (shExit('e2fsck', ['-fp', edited]) > 1) throw new Error('host e2fsck -fp failed');
  sh('resize2fs', [edited]);
  debugfsEdits(edited, render, `hostthin${run}`);
  if (shExit('e2fsck', ['-fn', edited]) !== 0) throw new Error(`host e2fsck -fn not clean: ${lastOutput}`);
  sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '-B', template, '-F', 'raw', edited, out]);
  const seconds = (performance.now() - started) / 1000;
  const bytes = allocated(out);
  rmSync(edited, { force: true });
  verifyQcow2(out);
  rmSync(out, { force: true });
  return { seconds, bytes };
}

/** A thin instance must check clean in qemu-img and, converted to raw, pass {@link verify}. */
function verifyQcow2(image, hostname = VALUES['HOSTNAME-TMPL']) {
  if (shExit('qemu-img', ['check', '-q', '-f', 'qcow2', image]) !== 0) throw new Error(`${image}: qemu-img check: ${lastOutput}`);
  const raw = `${image}.verify.raw`;
  sh('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, raw]);
  try {
    verify(raw, hostname);
  } finally {
    rmSync(raw, { force: true });
  }
}

function hostPipeline() {
  const out = join(work, `host${run}`);
  const started = performance.now();
  sh('cp', ['--sparse=always', template, out]);
  sh('truncate', ['-s', String(DISK_BYTES), out]);
  if (shExit('e2fsck', ['-fp', out]) > 1) throw new Error('host e2fsck -fp failed');
  sh('resize2fs', [out]);
  debugfsEdits(out, render, `host${run}`);
  if (shExit('e2fsck', ['-fn', out]) !== 0) throw new Error(`host e2fsck -fn not clean: ${lastOutput}`);
  const seconds = (performance.now() - started) / 1000;
  verify(out);
  rmSync(out, { force: true });
  return { seconds };
}

function articleSteps() {
  const out = join(work, `article${run}`);
  const started = performance.now();
  sh('cp', [template, out]);
  sh('qemu-img', ['resize', '-q', '-f', 'raw', out, String(DISK_BYTES)]);
  if (shExit('e2fsck', ['-fy', out]) > 1) throw new Error('article fsck -fy failed');
  sh('resize2fs', [out, String(DISK_BYTES / 1024) + 'K']);
  debugfsEdits(out, render, `article${run}`);
  if (shExit('e2fsck', ['-pv', out]) > 1) throw new Error('article fsck -pv failed');
  const seconds = (performance.now() - started) / 1000;
  verify(out);
  rmSync(out, { force: true });
  return { seconds };
}

/** Every variant must produce the same thing: fsck-clean, grown, rendered. */
function verify(image, expectedHostname = VALUES['HOSTNAME-TMPL']) {
  if (shExit('e2fsck', ['-fn', image]) !== 0) throw new Error(`${image}: not fsck-clean`);
  const header = sh('dumpe2fs', ['-h', image]).toString();
  const blocks = Number(/Block count:\s+(\d+)/.exec(header)[1]) * Number(/Block size:\s+(\d+)/.exec(header)[1]);
  if (blocks !== DISK_BYTES) throw new Error(`${image}: filesystem is ${blocks} bytes, expected ${DISK_BYTES}`);
  const hostname = sh('debugfs', ['-R', 'cat /etc/hostname', image]).toString();
  if (hostname.trim() !== expectedHostname) throw new Error(`${image}: /etc/hostname is ${JSON.stringify(hostname)}`);
}

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
let dropWarned = false;
function dropCaches() {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch {
    if (!dropWarned) console.log('note: cannot drop the page cache (not root): runs start with whatever is cached');
    dropWarned = true;
  }
}
const times = { diskwright: [], cli: [], host: [], article: [], thin: [], qemuOverlay: [], hostThin: [] };
const allocatedBytes = { thin: [], qemuOverlay: [], hostThin: [] };
const thinSteps = [];
const stepTimes = [];
for (run = 0; run < RUNS; run++) {
  // Rotate the order so neither side always runs with a warmer cache.
  const order = [['diskwright', diskwright], ['cli', diskwrightCli], ['host', hostPipeline], ['article', articleSteps], ['thin', diskwrightThin], ['qemuOverlay', qemuOverlayOnly], ['hostThin', hostThin]];
  for (let i = 0; i < run % 4; i++) order.push(order.shift());
  for (const [name, fn] of order) {
    // Start every variant from the same state: no dirty pages left by the previous one and, when
    // allowed (root), a cold page cache — this VM evicts the cache on its own, so "warm" depended
    // on which variant happened to run first.
    sh('sync', []);
    dropCaches();
    const r = await fn();
    times[name].push(r.seconds);
    if (r.bytes !== undefined) allocatedBytes[name].push(r.bytes);
    if (r.steps) (name === 'thin' ? thinSteps : stepTimes).push(r.steps);
  }
  console.log(`run ${run + 1}: diskwright ${times.diskwright.at(-1).toFixed(2)} s, cli ${times.cli.at(-1).toFixed(2)} s, host ${times.host.at(-1).toFixed(2)} s, article ${times.article.at(-1).toFixed(2)} s, thin ${times.thin.at(-1).toFixed(2)} s, qemu-img create -b ${times.qemuOverlay.at(-1).toFixed(3)} s, host+convert -B ${times.hostThin.at(-1).toFixed(2)} s`);
}
const layerBytes = sharedLayerBytes();
// What destroy does: each overlay leaves its layer's dependents; the last one removes the layer.
for (const disk of thinDisks) {
  const release = releaseThinInstance(disk);
  rmSync(disk);
  await release();
}
await closeE2fsPool();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = { diskwright: median(times.diskwright), cli: median(times.cli), host: median(times.host), article: median(times.article) };
const stepMedians = Object.fromEntries(Object.keys(stepTimes[0]).map((k) => [k, median(stepTimes.map((s) => s[k]))]));
console.log(`\ndiskwright steps (median s): ${Object.entries(stepMedians).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
console.log(`median wall time over ${RUNS} runs:`);
console.log(`  diskwright instance create --disk-only  ${m.diskwright.toFixed(2)} s`);
console.log(`  same via the CLI, fresh process each    ${m.cli.toFixed(2)} s   ratio cli/host           ${(m.cli / m.host).toFixed(2)}×`);
console.log(`  host pipeline (cp --sparse, e2fsprogs)  ${m.host.toFixed(2)} s   ratio diskwright/host    ${(m.diskwright / m.host).toFixed(2)}× (target ≤ 1.0×)`);
console.log(`  article steps (plain cp, qemu-img, …)   ${m.article.toFixed(2)} s   ratio diskwright/article ${(m.diskwright / m.article).toFixed(2)}×`);

// The target is the Nth instance's: run 1 (the first instance, which also makes the shared layer)
// is reported on its own line and left out of the thin medians (with a single run it is all there is).
const nth = (xs) => (xs.length > 1 ? xs.slice(1) : xs);
const m2 = { thin: median(nth(times.thin)), qemuOverlay: median(times.qemuOverlay), hostThin: median(times.hostThin) };
const mb = (name) => (median(allocatedBytes[name]) / 2 ** 20).toFixed(2);
const thinStepMedians = Object.fromEntries(Object.keys(thinSteps[0]).map((k) => [k, median(nth(thinSteps).map((s) => s[k]))]));
const thinRatios = nth(times.thin.map((t, i) => t / times.host[i]));
console.log(`\nthin qcow2 steps, Nth instances (median s): ${Object.entries(thinStepMedians).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
console.log(`thin instances, median over the ${nth(times.thin).length} Nth runs (same runs as above; per-round thin/host ${thinRatios.map((r) => r.toFixed(3)).join(', ')} → median ${median(thinRatios).toFixed(3)}×):`);
console.log(`  diskwright instance create --format qcow2  ${m2.thin.toFixed(2)} s, ${mb('thin')} MiB allocated   ratio thin/host ${(m2.thin / m.host).toFixed(3)}× (target ≤ 0.1×, ≤ 8 MiB)`);
console.log(`    first instance of the template (run 1)   ${times.thin[0].toFixed(2)} s   ratio ${(times.thin[0] / m.host).toFixed(3)}×; the shared grown layer it made: ${(layerBytes / 2 ** 20).toFixed(2)} MiB (once per template and size)`);
console.log(`  qemu-img create -f qcow2 -b (no identity)  ${m2.qemuOverlay.toFixed(3)} s, ${mb('qemuOverlay')} MiB allocated   ratio thin/it ${(m2.thin / m2.qemuOverlay).toFixed(1)}×`);
console.log(`  host pipeline + qemu-img convert -B       ${m2.hostThin.toFixed(2)} s, ${mb('hostThin')} MiB allocated   ratio thin/it ${(m2.thin / m2.hostThin).toFixed(3)}×`);
console.log('  (the host tools do not fsync; diskwright fsyncs the instance disk before its rename)');
