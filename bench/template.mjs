// Templatizing the article's five files (udev rules, hostname, resolv.conf, interfaces, inittab)
// on an 8 GiB ext3 template: diskwright in-process (`withFilesystem` + the template operations,
// committed with fsync) vs host `debugfs -w` doing the same five edits (one process, commands from
// a file, contents prepared beforehand) on identical fresh copies, in the same run. Both are warm
// (one untimed run first). libguestfs (virt-sysprep/virt-customize) boots an appliance VM per run:
// 0.6–6 s documented (shared/notes/measurements.md; no libguestfs here to run).
// Target: diskwright < 100 ms. Usage: npm run build && node bench/template.mjs [--runs 7] [--size-gib 8]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { applyTemplateOperations, withFilesystem } from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const RUNS = opt('runs', 7);
const SIZE_GIB = opt('size-gib', 8);
const OPS = ['udev-persistent-net', 'hostname', 'resolv-conf', 'network-interfaces', 'inittab-serial'];
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const sh = (cmd, argv) => execFileSync(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 }).toString();

const work = mkdtempSync(join(tmpdir(), 'dw-bench-template-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const INTERFACES = 'source /etc/network/interfaces.d/*\n\n# The loopback network interface\nauto lo\niface lo inet loopback\n\n# The primary network interface\nallow-hotplug eth0\niface eth0 inet dhcp\n';
const INITTAB = 'id:2:initdefault:\n1:2345:respawn:/sbin/getty 38400 tty1\n#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n';
const tree = join(work, 'root');
const files = {
  'etc/hostname': 'debbase\n',
  'etc/resolv.conf': 'nameserver 192.168.1.1\n',
  'etc/network/interfaces': INTERFACES,
  'etc/inittab': INITTAB,
  'etc/udev/rules.d/70-persistent-net.rules': 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:aa:bb:cc", NAME="eth0"\n',
  'etc/passwd': 'root:x:0:0:root:/root:/bin/bash\n',
};
for (const [path, content] of Object.entries(files)) {
  mkdirSync(dirname(join(tree, path)), { recursive: true });
  writeFileSync(join(tree, path), content);
}
// Some bulk so the directory/inode layout is not trivial.
for (let d = 0; d < 20; d += 1) {
  mkdirSync(join(tree, 'usr/share/doc', `pkg${d}`), { recursive: true });
  for (let f = 0; f < 50; f += 1) writeFileSync(join(tree, 'usr/share/doc', `pkg${d}`, `f${f}`), `doc ${d}/${f}\n`.repeat(1 + f));
}
symlinkSync('/etc/machine-id', join(tree, 'machine-id-link'));

const base = join(work, 'base.img');
let started = performance.now();
sh('mke2fs', ['-q', '-F', '-t', 'ext3', '-d', tree, base, `${SIZE_GIB}G`]);
process.stdout.write(`setup: ${SIZE_GIB} GiB ext3 template made by host mke2fs -d in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);

// debugfs gets the final contents ready-made (what diskwright computes in-process).
const debugfsDir = join(work, 'debugfs-src');
mkdirSync(debugfsDir);
const want = {
  '/etc/udev/rules.d/70-persistent-net.rules': '',
  '/etc/hostname': 'HOSTNAME-TMPL\n',
  '/etc/resolv.conf': 'nameserver NAMESERVER-TMPL\n',
  '/etc/network/interfaces': INTERFACES.replace('allow-hotplug eth0\niface eth0 inet dhcp\n', 'auto eth0\niface eth0 inet static\n    address ADDRESS-TMPL\n    netmask NETMASK-TMPL\n    gateway GATEWAY-TMPL\n'),
  '/etc/inittab': INITTAB.replace('#T0:', 'T0:'),
};
const cmds = [];
Object.entries(want).forEach(([path, content], i) => {
  const src = join(debugfsDir, `f${i}`);
  writeFileSync(src, content);
  cmds.push(`rm ${path}`, `write ${src} ${path}`);
});
const cmdFile = join(work, 'edits.cmds');
writeFileSync(cmdFile, `${cmds.join('\n')}\n`);

const image = join(work, 'tmpl.img');
const fresh = () => {
  rmSync(image, { force: true });
  sh('cp', ['--sparse=always', base, image]);
};

const editTimes = [];
async function ours() {
  fresh();
  const t0 = performance.now();
  let editsMs = 0;
  const result = await withFilesystem(image, { write: true }, async (fs) => {
    const t1 = performance.now();
    const applied = await applyTemplateOperations(fs, { ops: OPS });
    editsMs = performance.now() - t1;
    return applied;
  });
  const ms = performance.now() - t0;
  editTimes.push(editsMs);
  const applied = result.operations.filter((op) => op.status === 'applied').length;
  if (applied !== OPS.length) throw new Error(`expected ${OPS.length} operations applied, got ${applied}`);
  return ms;
}

function theirs(durable) {
  fresh();
  const t0 = performance.now();
  sh('debugfs', ['-w', '-f', cmdFile, image]);
  // debugfs does not fsync; `sync FILE` makes its edits durable like our commit is.
  if (durable) sh('sync', [image]);
  return performance.now() - t0;
}

function verify(label) {
  for (const [path, content] of Object.entries(want)) {
    const got = sh('debugfs', ['-R', `cat ${path}`, image]);
    if (got !== content) throw new Error(`${label}: ${path} differs from the expected content`);
  }
  sh('e2fsck', ['-fn', image]);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
await ours();
verify('diskwright');
theirs(false);
verify('debugfs');
editTimes.length = 0;
const a = [];
const b = [];
const c = [];
for (let i = 0; i < RUNS; i += 1) {
  a.push(await ours());
  b.push(theirs(false));
  c.push(theirs(true));
}
const ourMs = median(a);
const debugfsMs = median(b);
const row = (name, ms, note = '') => process.stdout.write(`${name.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms${note}\n`);
process.stdout.write(`\ntemplatize 5 files on a ${SIZE_GIB} GiB template (median of ${RUNS}, warm):\n`);
row('diskwright (in-process)', ourMs, `   min ${Math.min(...a).toFixed(1)} / max ${Math.max(...a).toFixed(1)}; target < 100 ms: ${ourMs < 100 ? 'met' : 'MISSED'}`);
row('  of which: the 5 edits in session', median(editTimes), '   (the rest: open, crash-safe commit with undo log + fsync)');
row('host debugfs -w (same 5 edits)', debugfsMs, `   ratio diskwright/debugfs = ${(ourMs / debugfsMs).toFixed(2)} (debugfs does not fsync)`);
row('host debugfs -w + sync FILE', median(c), `   ratio diskwright/(debugfs+sync) = ${(ourMs / median(c)).toFixed(2)}`);
row('libguestfs (notes, not run here)', 600, ` … 6000 ms   → diskwright is ${(600 / ourMs).toFixed(0)}–${(6000 / ourMs).toFixed(0)}× faster`);
