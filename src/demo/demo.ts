import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import { formatBytes } from '../bytes/index.js';
import type { ProgressCallback } from '../io/progress.js';
import { readPartitionTable, formatSfdiskList, toSfdiskJson } from '../partition/index.js';
import { buildDisk } from '../build/index.js';
import { makeTemplate, type TemplateManifest } from '../template/index.js';
import { createInstance, defaultSteps } from '../instance/index.js';
import { withFilesystem } from '../ext/index.js';
import { formatCommandLine } from '../virt/index.js';
import { busyboxPath, ensureBootKit, readStaticBusybox, type BootKit } from './bootkit.js';

/** What to install for the demo's boot (Debian's plain `busybox` is dynamically linked). */
export const BUSYBOX_HINT = 'install busybox-static for the boot (sudo apt-get install busybox-static), or set DISKWRIGHT_BUSYBOX to a static busybox';
import { buildDemoRoot } from './root-tree.js';
import { seedLayout } from './seed.js';
import { BOOT_EXTRA_KERNEL_ARGS, bootDisk, qemuAvailable } from './qemu.js';
import { parseGuestConsole, verifyGuestIdentity } from './console.js';

/** The demo instance: an address in QEMU's user-network range so the boot can show it. */
export const DEMO_INSTANCE = {
  ip: '10.0.2.15',
  host: 'web01',
  domain: 'linux.bogus',
  gateway: '10.0.2.2',
  netmask: '255.255.255.0',
  nameserver: '10.0.2.3',
  disk: '128M',
} as const;
/** Size of the seed's root partition (the demo tree holds ~12 MiB). */
export const DEMO_ROOT_BYTES = 64 * 1024 * 1024;
/** Files the demo shows from the finished instance disk. */
export const DEMO_SHOWN_FILES = ['/etc/hostname', '/etc/network/interfaces', '/etc/resolv.conf'] as const;

/** How the demo talks to its display (the CLI prints; tests collect). */
export interface DemoReporter {
  /** A numbered step with a one-line explanation for a newcomer. */
  step(title: string, explanation: string): void;
  /** Indented detail lines under the current step. */
  detail(lines: string | readonly string[]): void;
  /** A progress display for a long part of the current step. */
  progress(label: string): { update: ProgressCallback; done(): void };
  /** Something skipped or degraded, not a failure. */
  note(message: string): void;
}

export interface DemoOptions {
  /** Working directory (created; must be empty). Default: a new temp directory, kept afterwards. */
  readonly dir?: string;
  /** Skip the QEMU boot. */
  readonly boot?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly reporter: DemoReporter;
}

export interface DemoBootOutcome {
  readonly status: 'booted' | 'skipped' | 'failed';
  readonly reason?: string;
  readonly seconds?: number;
  readonly lines?: readonly string[];
  readonly consoleLog?: string;
}

export interface DemoResult {
  readonly dir: string;
  readonly seedDisk: string;
  readonly partitions: unknown;
  readonly template: string;
  readonly manifest: TemplateManifest;
  readonly instanceDisk: string;
  readonly files: readonly { readonly path: string; readonly content: string }[];
  readonly kernelArgs: readonly string[];
  readonly virtInstall: readonly string[];
  readonly virshStart: readonly string[];
  readonly boot: DemoBootOutcome;
}

async function prepareDir(dir: string | undefined): Promise<string> {
  if (dir === undefined) return mkdtemp(join(tmpdir(), 'diskwright-demo-'));
  const path = resolve(dir);
  await mkdir(path, { recursive: true });
  const entries = await readdir(path);
  if (entries.length > 0) {
    throw new DiskwrightError('E_EXISTS', `demo directory ${path} is not empty`, { path, hint: 'pass --dir with a new or empty directory' });
  }
  return path;
}

function indent(text: string): string[] {
  return text.replace(/\n$/, '').split('\n').map((l) => `  ${l}`);
}

/**
 * The README demo: the whole job on a built-in default, no root and no libvirt. Builds a seed-like
 * disk from the built-in root tree, lists its partitions, makes a template, creates an instance disk
 * (`--disk-only`), shows the rendered files and the virt-install command, and boots the instance
 * under QEMU when it can.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const env = options.env ?? process.env;
  const dir = await prepareDir(options.dir);
  try {
    return await demoSteps(options, env, dir);
  } catch (error) {
    // A failed run leaves nothing behind in a directory it made itself.
    if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Why the host's busybox cannot go into the demo root (missing or not static), or undefined. */
async function busyboxProblem(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    await readStaticBusybox(busyboxPath({ env }));
    return undefined;
  } catch (error) {
    if (!(error instanceof DiskwrightError)) throw error;
    return error.message;
  }
}

async function demoSteps(options: DemoOptions, env: NodeJS.ProcessEnv, dir: string): Promise<DemoResult> {
  const { reporter, signal } = options;
  const signalOpt = signal ? { signal } : {};
  reporter.detail(`working directory: ${dir}`);

  // 1. kernel + initramfs (optional: without it the demo still does everything but boot)
  reporter.step('Fetch a Debian kernel and build a small initramfs', 'apt-get download + dpkg-deb -x (no install), depmod, a busybox initramfs that mounts root=/dev/vda');
  let kit: BootKit | undefined;
  let kitError: string | undefined;
  // Checked first: without a static busybox nothing can boot, so the kernel is not downloaded.
  const noBusybox = await busyboxProblem(env);
  if (noBusybox !== undefined) {
    kitError = `${noBusybox}; ${BUSYBOX_HINT}`;
    reporter.note(`${kitError} — continuing without a kernel or a userland, the boot step will be skipped`);
  } else {
    try {
      kit = await ensureBootKit({ env, ...signalOpt, onStep: (m) => reporter.detail(m) });
      reporter.detail([`kernel ${kit.version}${kit.cached ? ' (cached)' : ''}`, `vmlinuz: ${kit.kernel}`, `initrd:  ${kit.initrd}`]);
    } catch (error) {
      if (error instanceof DiskwrightError && error.code === 'E_ABORTED') throw error;
      kitError = error instanceof Error ? error.message : String(error);
      reporter.note(`no kernel: ${kitError} — continuing without /boot, the boot step will be skipped`);
    }
  }

  // 2. root tree
  reporter.step('Build the demo root tree', 'busybox-static, an /sbin/init that reports its identity, Debian-like /etc files, /boot with the kernel');
  const root = join(dir, 'root');
  const tree = await buildDemoRoot(root, { env, ...(kit ? { boot: kit } : {}), ...(noBusybox !== undefined ? { withoutBusybox: true } : {}) });
  reporter.detail(
    `${root}: ${noBusybox !== undefined ? 'no busybox (none static on this host)' : `/bin/busybox with ${tree.applets} applet links`}, /sbin/init, /etc${tree.boot ? ', /boot' : ' (no /boot: no kernel)'}`,
  );

  // 3. seed disk
  reporter.step('Make a seed-like disk', '`diskwright disk build`: sparse image, MBR with p1 ext3 at sector 2048 (bootable) and a logical swap, filesystem filled from the tree');
  const seed = seedLayout(DEMO_ROOT_BYTES);
  const seedDisk = join(dir, 'seed.img');
  await buildDisk(seedDisk, {
    size: seed.diskBytes,
    layout: seed.script,
    filesystems: [
      { partition: 1, type: 'ext3', from: root, label: 'demo-root' },
      { partition: 5, type: 'swap' },
    ],
    ...signalOpt,
  });
  throwIfAborted(signal);
  const allocated = (await stat(seedDisk)).blocks * 512;
  reporter.detail(`${seedDisk}: ${formatBytes(seed.diskBytes)} (sparse: ${formatBytes(allocated)} allocated)`);

  // 4. partitions
  reporter.step('List its partitions', 'what `diskwright partitions seed.img` prints (the same as `sfdisk -l`)');
  const table = await readPartitionTable(seedDisk);
  reporter.detail(indent(formatSfdiskList(table, seedDisk)));

  // 5. template
  reporter.step('Make a template', '`diskwright template make seed.img --partition 1`: extract p1, apply the sysprep operations, record the kernel');
  const template = join(dir, 'debian-tmpl');
  const templateBar = reporter.progress('extract p1');
  let manifest: TemplateManifest;
  try {
    manifest = await makeTemplate(seedDisk, { partition: 1, output: template, ...(kit ? { kernelDir: join(dir, 'kernels') } : {}), ...signalOpt, onProgress: templateBar.update });
  } finally {
    templateBar.done();
  }
  reporter.detail(manifest.operations.map((op) => `${op.status.padEnd(14)} ${op.name}${op.detail ? ` — ${op.detail}` : ''}`));
  reporter.detail(manifest.files.map((f) => `placeholders in ${f.path}: ${f.placeholders.join(', ')}`));
  if (manifest.kernel) reporter.detail(`kernel recorded: ${manifest.kernel.kernel}${manifest.kernel.initrd ? ` + ${manifest.kernel.initrd}` : ''}`);

  // 6. instance
  reporter.step('Create an instance disk', `\`diskwright instance create ${DEMO_INSTANCE.ip} ${DEMO_INSTANCE.host} --disk-only\`: copy, grow to ${DEMO_INSTANCE.disk}, fsck, resize2fs, render, fsck`);
  const imagesDir = join(dir, 'images');
  await mkdir(imagesDir);
  let standInKernel: string | undefined;
  if (!manifest.kernel) {
    // No kernel in the template: instance create needs one for its virt-install command. A
    // clearly named stand-in keeps the disk steps running; the boot step is skipped anyway.
    standInKernel = join(dir, 'kernels', 'vmlinuz-not-fetched');
    await mkdir(join(dir, 'kernels'), { recursive: true });
    await writeFile(standInKernel, 'stand-in: the demo could not fetch a kernel, see its step 1\n');
    reporter.note(`the template records no kernel; the virt-install command below names a stand-in file (${standInKernel})`);
  }
  const instanceBar = reporter.progress('copy template');
  let instance;
  try {
    instance = await createInstance({
      request: {
        ip: DEMO_INSTANCE.ip,
        host: DEMO_INSTANCE.host,
        domain: DEMO_INSTANCE.domain,
        gateway: DEMO_INSTANCE.gateway,
        netmask: DEMO_INSTANCE.netmask,
        nameserver: DEMO_INSTANCE.nameserver,
        disk: DEMO_INSTANCE.disk,
        template,
        imagesDir,
        kernelArgs: BOOT_EXTRA_KERNEL_ARGS.join(' '),
        ...(standInKernel ? { kernel: standInKernel } : {}),
      },
      diskOnly: true,
      steps: defaultSteps,
      ...signalOpt,
      onProgress: instanceBar.update,
    });
  } finally {
    instanceBar.done();
  }
  const instanceDisk = instance.disk;
  reporter.detail(`${instanceDisk} (${instance.steps.map((s) => `${s.step} ${s.seconds.toFixed(2)}s`).join(', ')})`);

  // 7. rendered files
  reporter.step('Show the rendered files', 'read straight from the instance disk, no mount');
  const files = await withFilesystem(instanceDisk, {}, async (fs) => {
    const out: { path: string; content: string }[] = [];
    for (const path of DEMO_SHOWN_FILES) out.push({ path, content: await fs.readText(path) });
    return out;
  });
  for (const file of files) reporter.detail([`${file.path}:`, ...indent(file.content).map((l) => `  ${l}`)]);

  // 8. virt-install
  reporter.step('The libvirt commands it would run', 'without --disk-only, diskwright runs these (argv arrays, no shell)');
  reporter.detail([formatCommandLine('virt-install', instance.plan.virtInstall), formatCommandLine('virsh', instance.plan.virshStart)]);

  // 9. boot
  reporter.step('Boot the instance under QEMU', 'qemu-system-x86_64 -accel tcg with the kernel, initrd and kernel args diskwright recorded');
  const boot = await bootStep({ options, env, kit, kitError, instance: { disk: instanceDisk, kernel: instance.plan.kernel, initrd: instance.plan.initrd, kernelArgs: instance.plan.kernelArgs }, dir });

  const result: DemoResult = {
    dir,
    seedDisk,
    partitions: toSfdiskJson(table, seedDisk),
    template,
    manifest,
    instanceDisk,
    files,
    kernelArgs: instance.plan.kernelArgs,
    virtInstall: instance.plan.virtInstall,
    virshStart: instance.plan.virshStart,
    boot,
  };
  await writeFile(join(dir, 'demo.json'), `${JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2)}\n`);
  return result;
}

async function bootStep(input: {
  options: DemoOptions;
  env: NodeJS.ProcessEnv;
  kit: BootKit | undefined;
  kitError: string | undefined;
  instance: { disk: string; kernel: string; initrd: string | undefined; kernelArgs: readonly string[] };
  dir: string;
}): Promise<DemoBootOutcome> {
  const { options, env, kit, kitError, instance, dir } = input;
  const { reporter } = options;
  const skip = (reason: string): DemoBootOutcome => {
    reporter.note(`boot skipped: ${reason}`);
    return { status: 'skipped', reason };
  };
  if (options.boot === false) return skip('--no-boot');
  if (!kit) return skip(kitError?.includes(BUSYBOX_HINT) ? kitError : `the kernel could not be fetched (${kitError ?? 'unknown reason'})`);
  if (!(await qemuAvailable(env))) return skip('qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)');
  const consoleLog = join(dir, 'console.log');
  reporter.detail(`kernel args: ${instance.kernelArgs.join(' ')}`);
  reporter.detail('booting (software emulation, usually 5–20 s); the guest\'s report follows:');
  let pending = '';
  const result = await bootDisk({
    onConsole: (text) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      const markers = parseGuestConsole(lines.join('\n')).lines;
      if (markers.length > 0) reporter.detail(markers.map((l) => `guest| ${l}`));
    },
    kernel: instance.kernel,
    ...(instance.initrd ? { initrd: instance.initrd } : {}),
    disk: instance.disk,
    append: instance.kernelArgs.join(' '),
    log: consoleLog,
    env,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const report = parseGuestConsole(result.console);
  const tail = parseGuestConsole(pending).lines;
  if (tail.length > 0) reporter.detail(tail.map((l) => `guest| ${l}`));
  const base = { seconds: result.seconds, lines: report.lines, consoleLog };
  if (result.timedOut) {
    reporter.note(`the guest did not power off in time; its console is in ${consoleLog}`);
    return { status: 'failed', reason: 'timeout', ...base };
  }
  try {
    verifyGuestIdentity(report, { hostnames: [DEMO_INSTANCE.host, `${DEMO_INSTANCE.host}.${DEMO_INSTANCE.domain}`], address: DEMO_INSTANCE.ip });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    reporter.note(reason);
    return { status: 'failed', reason, ...base };
  }
  reporter.detail(`booted to power-off in ${result.seconds.toFixed(1)} s: hostname and eth0 address match the instance`);
  return { status: 'booted', ...base };
}
