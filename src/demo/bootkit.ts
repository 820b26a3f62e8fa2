import { createHash, randomBytes } from 'node:crypto';
import { access, copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import { encodeCpio, type CpioEntry } from './cpio.js';
import { isStaticElf64 } from './elf.js';

/**
 * The boot kit: a Debian kernel and a small initramfs that can mount an ext root on a virtio disk
 * and drive a virtio NIC. Built without root: `apt-get download` (no install), `dpkg-deb -x`,
 * `depmod -b`, `modprobe --show-depends` for the load order, and our own cpio writer.
 */

/** Modules the initramfs loads (their dependencies are resolved by modprobe). */
export const BOOT_MODULES = ['virtio_pci', 'virtio_blk', 'ext4', 'virtio_net'] as const;
/** The meta package whose dependency names the current kernel image package. */
export const KERNEL_META_PACKAGE = 'linux-image-amd64';
/** Bumped when the kit layout or the initramfs builder changes, so caches are rebuilt. */
const KIT_FORMAT = 'diskwright-bootkit-1';
/** A kernel image package name as Debian spells it; anything else never reaches argv. */
const KERNEL_PACKAGE_PATTERN = /^linux-image-[0-9][0-9a-z.+-]*-amd64$/;
const KERNEL_VERSION_PATTERN = /^[0-9][0-9a-z.+-]*$/;
const TOOL_PATH_EXTRA = ':/usr/sbin:/sbin';

/** What a built kit holds: absolute paths in the cache. */
export interface BootKit {
  /** Kernel release, e.g. `6.1.0-56-amd64`. */
  readonly version: string;
  readonly kernel: string;
  readonly initrd: string;
  /** The .deb the kernel came from. */
  readonly deb: string;
  /** Modules in the initramfs, in load order (paths relative to lib/modules/VERSION). */
  readonly modules: readonly string[];
  /** True when the kit was already in the cache. */
  readonly cached: boolean;
}

export interface BootKitOptions {
  /** Cache directory (default: $DISKWRIGHT_CACHE_DIR/boot, $XDG_CACHE_HOME/diskwright/boot or ~/.cache/diskwright/boot). */
  readonly cacheDir?: string;
  /** Use this kernel .deb instead of downloading one ($DISKWRIGHT_KERNEL_DEB). */
  readonly deb?: string;
  /** The static busybox to put in the initramfs (default: $DISKWRIGHT_BUSYBOX or /bin/busybox). */
  readonly busybox?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  /** Called with a short line before each slow step. */
  readonly onStep?: (message: string) => void;
}

/** Path of a file shipped under `fixtures/` (same relative place from src/demo and dist/demo). */
export function fixturePath(...parts: string[]): string {
  return join(fileURLToPath(new URL('../../fixtures/', import.meta.url)), ...parts);
}

/** The cache directory the kit uses for `env`. */
export function defaultBootCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DISKWRIGHT_CACHE_DIR) return join(env.DISKWRIGHT_CACHE_DIR, 'boot');
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'diskwright', 'boot');
}

function toolEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, PATH: `${env.PATH ?? '/usr/bin:/bin'}${TOOL_PATH_EXTRA}` };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function run(tool: string, args: readonly string[], options: { cwd?: string; env: NodeJS.ProcessEnv; signal?: AbortSignal; hint: string }): Promise<string> {
  throwIfAborted(options.signal);
  let result;
  try {
    result = await execa(tool, args, { cwd: options.cwd, env: toolEnv(options.env), extendEnv: false, reject: false, cancelSignal: options.signal, stdin: 'ignore' });
  } catch (error) {
    throw new DiskwrightError('E_BOOT', `could not run \`${tool}\`: ${(error as Error).message.split('\n')[0]}`, { hint: options.hint, cause: error });
  }
  if (options.signal?.aborted) throwIfAborted(options.signal);
  if (result.failed || result.exitCode !== 0) {
    const detail = (result.stderr || result.stdout || result.message || '').trim().split('\n').pop() ?? '';
    throw new DiskwrightError('E_BOOT', `\`${tool} ${args.join(' ')}\` failed${result.exitCode === undefined ? '' : ` (exit ${result.exitCode})`}: ${detail}`, { hint: options.hint });
  }
  return result.stdout;
}

/** Parses `apt-cache depends linux-image-amd64` for the versioned kernel package. */
export function parseKernelPackage(aptCacheDepends: string): string | undefined {
  for (const line of aptCacheDepends.split('\n')) {
    const match = /^\s*\|?Depends:\s*(\S+)\s*$/.exec(line);
    if (match && KERNEL_PACKAGE_PATTERN.test(match[1]!)) return match[1];
  }
  return undefined;
}

/** Parses `modprobe --show-depends` output into module paths (builtins are skipped). */
export function parseShowDepends(output: string, moduleRoot: string): string[] {
  const modules: string[] = [];
  const prefix = moduleRoot.endsWith('/') ? moduleRoot : `${moduleRoot}/`;
  for (const line of output.split('\n')) {
    const match = /^insmod\s+(\S+\.ko(?:\.xz|\.zst|\.gz)?)/.exec(line.trim());
    if (!match) continue;
    const path = match[1]!;
    if (!path.startsWith(prefix)) {
      throw new DiskwrightError('E_BOOT', `modprobe named a module outside the unpacked kernel: ${path}`);
    }
    modules.push(path.slice(prefix.length));
  }
  return modules;
}

async function cachedDebs(cacheDir: string): Promise<string[]> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  return names.filter((n) => /^linux-image-[0-9].*-amd64_.*_amd64\.deb$/.test(n)).sort().map((n) => join(cacheDir, n));
}

/** Finds or downloads the kernel .deb into the cache. */
async function ensureKernelDeb(cacheDir: string, options: BootKitOptions, env: NodeJS.ProcessEnv): Promise<string> {
  const explicit = options.deb ?? env.DISKWRIGHT_KERNEL_DEB;
  if (explicit) {
    if (!(await exists(explicit))) throw new DiskwrightError('E_NOT_FOUND', `kernel package ${explicit} does not exist`, { path: explicit });
    return explicit;
  }
  const hint = 'run `apt-get update` (the kernel comes from Debian\'s linux-image-amd64), or set DISKWRIGHT_KERNEL_DEB to a linux-image-*-amd64 .deb';
  let pkg: string | undefined;
  try {
    pkg = parseKernelPackage(await run('apt-cache', ['depends', KERNEL_META_PACKAGE], { env, signal: options.signal, hint }));
  } catch (error) {
    if ((error as DiskwrightError).code === 'E_ABORTED') throw error;
  }
  const cached = await cachedDebs(cacheDir);
  if (pkg) {
    const hit = cached.find((path) => basename(path).startsWith(`${pkg}_`));
    if (hit) return hit;
  } else {
    // No package lists (offline, no apt): a kernel fetched earlier still does the job.
    const newest = cached.at(-1);
    if (newest) return newest;
    throw new DiskwrightError('E_BOOT', `could not find the kernel package behind ${KERNEL_META_PACKAGE} with apt-cache`, { hint });
  }
  options.onStep?.(`downloading ${pkg} with apt-get download`);
  const work = join(cacheDir, `.download-${randomBytes(6).toString('hex')}`);
  await mkdir(work, { recursive: true });
  try {
    await run('apt-get', ['download', pkg], { cwd: work, env, signal: options.signal, hint });
    const debs = (await readdir(work)).filter((n) => n.endsWith('.deb'));
    if (debs.length !== 1) throw new DiskwrightError('E_BOOT', `apt-get download ${pkg} left ${debs.length} .deb files`, { hint });
    const target = join(cacheDir, debs[0]!);
    await rename(join(work, debs[0]!), target);
    // A newer kernel replaced the cached one: drop the old package (70 MB each) from the cache.
    for (const old of cached) if (old !== target) await rm(old, { force: true });
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Reads busybox and checks it is static (a dynamic one cannot run in an initramfs). */
export async function readStaticBusybox(path: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new DiskwrightError('E_NOT_FOUND', `busybox not found at ${path}`, { path, hint: 'install the busybox-static package (or set DISKWRIGHT_BUSYBOX)', cause: error });
  }
  if (!isStaticElf64(bytes)) {
    throw new DiskwrightError('E_BOOT', `${path} is not a static 64-bit busybox`, { path, hint: 'install the busybox-static package (or set DISKWRIGHT_BUSYBOX)' });
  }
  return bytes;
}

/** The busybox the kit and the demo root use. */
export function busyboxPath(options: { busybox?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return options.busybox ?? options.env?.DISKWRIGHT_BUSYBOX ?? process.env.DISKWRIGHT_BUSYBOX ?? '/bin/busybox';
}

/** Builds the initramfs members: busybox, /init, /dev/console and the modules in load order. */
export function initramfsEntries(input: { init: Uint8Array; busybox: Uint8Array; modules: readonly { name: string; data: Uint8Array }[] }): CpioEntry[] {
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', data: input.busybox, mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'dir', path: 'dev' },
    { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'dir', path: 'etc' },
    { type: 'dir', path: 'lib' },
    { type: 'dir', path: 'lib/modules' },
    { type: 'dir', path: 'newroot' },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sys' },
    { type: 'file', path: 'init', data: input.init, mode: 0o755 },
  ];
  const order: string[] = [];
  for (const module of input.modules) {
    entries.push({ type: 'file', path: `lib/modules/${module.name}`, data: module.data, mode: 0o644 });
    order.push(module.name);
  }
  entries.push({ type: 'file', path: 'etc/diskwright-modules', data: new TextEncoder().encode(`${order.join('\n')}\n`) });
  return entries;
}

/**
 * Returns a cached boot kit or builds one: kernel .deb (downloaded once into the cache), unpacked
 * with dpkg-deb, modules resolved with depmod/modprobe, initramfs written as gzip newc. The kit
 * directory is named by a hash of every input, so a new kernel, busybox or /init rebuilds it.
 */
export async function ensureBootKit(options: BootKitOptions = {}): Promise<BootKit> {
  const env = options.env ?? process.env;
  const cacheDir = options.cacheDir ?? defaultBootCacheDir(env);
  await mkdir(cacheDir, { recursive: true });
  const deb = await ensureKernelDeb(cacheDir, options, env);
  throwIfAborted(options.signal);
  const busybox = await readStaticBusybox(busyboxPath({ busybox: options.busybox, env }));
  const init = await readFile(fixturePath('boot', 'init'));
  const key = createHash('sha256')
    .update(KIT_FORMAT)
    .update(BOOT_MODULES.join(','))
    .update(await readFile(deb))
    .update(busybox)
    .update(init)
    .digest('hex')
    .slice(0, 16);
  const kitDir = join(cacheDir, `kit-${key}`);
  const manifestPath = join(kitDir, 'kit.json');
  if (await exists(manifestPath)) {
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { version: string; modules: string[] };
    return { version: manifest.version, kernel: join(kitDir, 'vmlinuz'), initrd: join(kitDir, 'initrd.img'), deb, modules: manifest.modules, cached: true };
  }

  const work = join(cacheDir, `.build-${randomBytes(6).toString('hex')}`);
  try {
    const root = join(work, 'root');
    await mkdir(root, { recursive: true });
    options.onStep?.(`unpacking ${basename(deb)} (dpkg-deb -x, no install)`);
    const hint = 'install the dpkg and kmod packages';
    await run('dpkg-deb', ['-x', deb, root], { env, signal: options.signal, hint });
    const versions = (await readdir(join(root, 'lib', 'modules')).catch(() => [] as string[])).filter((v) => KERNEL_VERSION_PATTERN.test(v));
    if (versions.length !== 1) throw new DiskwrightError('E_BOOT', `${basename(deb)} holds ${versions.length} kernel module trees, expected 1`);
    const version = versions[0]!;
    const vmlinuz = join(root, 'boot', `vmlinuz-${version}`);
    if (!(await exists(vmlinuz))) throw new DiskwrightError('E_BOOT', `${basename(deb)} has no boot/vmlinuz-${version}`);
    options.onStep?.(`resolving module load order for ${BOOT_MODULES.join(', ')}`);
    await run('depmod', ['-b', root, version], { env, signal: options.signal, hint });
    const moduleRoot = join(root, 'lib', 'modules', version);
    const order: string[] = [];
    for (const name of BOOT_MODULES) {
      const out = await run('modprobe', ['-d', root, '-S', version, '--show-depends', name], { env, signal: options.signal, hint });
      for (const path of parseShowDepends(out, moduleRoot)) if (!order.includes(path)) order.push(path);
    }
    const modules = [];
    for (const rel of order) {
      // Flattened names keep /init simple; module file names are unique in a kernel tree.
      modules.push({ name: basename(rel), data: await readFile(join(moduleRoot, rel)) });
    }
    if (new Set(modules.map((m) => m.name)).size !== modules.length) throw new DiskwrightError('E_BOOT', 'two boot modules share a file name');
    const cpio = encodeCpio(initramfsEntries({ init, busybox, modules }));
    const staged = join(work, 'kit');
    await mkdir(staged);
    await copyFile(vmlinuz, join(staged, 'vmlinuz'));
    await writeFile(join(staged, 'initrd.img'), gzipSync(cpio, { level: 9 }));
    await writeFile(join(staged, 'kit.json'), `${JSON.stringify({ format: KIT_FORMAT, version, deb: basename(deb), modules: order }, null, 2)}\n`);
    try {
      await rename(staged, kitDir);
    } catch (error) {
      // Another process finished the same kit first (same inputs, same bytes): use theirs.
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await exists(manifestPath))) throw error;
    }
    return { version, kernel: join(kitDir, 'vmlinuz'), initrd: join(kitDir, 'initrd.img'), deb, modules: order, cached: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
