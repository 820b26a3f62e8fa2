/**
 * A real Debian root filesystem for tests, built from Debian packages with `mmdebstrap` and cached
 * as a tarball, so the boot and layout tests run against what a user's installed system holds.
 *
 * Cache: `${DISKWRIGHT_CACHE:-$HOME/.cache/diskwright}/debian/<hash-of-inputs>.tar`. The name is a
 * hash of everything that changes the result (suite, variant, sorted package list, mirror, builder
 * format), so a rerun with the same inputs reuses the file and any change builds a new one. The
 * tarball is written under a temp name beside it and renamed when mmdebstrap succeeded; a lock
 * file makes concurrent test processes wait for one build instead of running two.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** Bumped when the way the tarball is made changes, so caches are rebuilt. */
export const DEBIAN_ROOTFS_FORMAT = 'diskwright-debian-rootfs-1';
/** The release the tests use (Debian 12). */
export const DEBIAN_SUITE = 'bookworm';
/** Where apt on this host fetches Debian from (deb822 sources; its first `URIs:`). */
export const DEBIAN_SOURCES = '/etc/apt/sources.list.d/debian.sources';
/** Used when the host has no deb822 Debian source. */
export const FALLBACK_MIRROR = 'http://deb.debian.org/debian';
/** How long a process waits for another one's build of the same tarball. */
const LOCK_WAIT_MS = 30 * 60_000;
/** A Debian package name (Debian policy §5.6.1); nothing else reaches mmdebstrap's argv. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const SUITE_NAME = /^[a-z][a-z0-9-]*$/;
const VARIANTS = new Set(['extract', 'custom', 'essential', 'apt', 'required', 'minbase', 'buildd', 'important', 'debootstrap', 'standard']);
const MIRROR = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]+)?(\/[A-Za-z0-9._~/-]*)?$/;

export interface DebianRootfsOptions {
  /** Packages beyond the variant's (mmdebstrap `--include`). */
  readonly packages: readonly string[];
  /** Default {@link DEBIAN_SUITE}. */
  readonly suite?: string;
  /** mmdebstrap `--variant` (default `minbase`: Essential + apt, like debootstrap's minbase). */
  readonly variant?: string;
  /** Default: the host's Debian mirror ({@link debianMirror}). */
  readonly mirror?: string;
  /** Default: {@link debianCacheDir}. */
  readonly cacheDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Called once before a (slow, minutes) build starts. */
  readonly onBuild?: (message: string) => void;
}

export interface DebianRootfs {
  /** Absolute path of the cached tarball. */
  readonly tarball: string;
  /** True when it was already in the cache. */
  readonly cached: boolean;
  /** Seconds spent building (0 when cached). */
  readonly seconds: number;
}

/** `${DISKWRIGHT_CACHE:-$HOME/.cache/diskwright}/debian` (DISKWRIGHT_CACHE_DIR and XDG_CACHE_HOME too). */
export function debianCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.DISKWRIGHT_CACHE || env.DISKWRIGHT_CACHE_DIR || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'diskwright');
  return join(base, 'debian');
}

/** The first `URIs:` of a deb822 sources file whose Suites name `suite` (without a trailing slash). */
export function mirrorFromSources(text: string, suite = DEBIAN_SUITE): string | undefined {
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string | undefined => new RegExp(`^${name}:[ \\t]*(.+)$`, 'mi').exec(stanza)?.[1]?.trim();
    const uris = field('URIs')?.split(/\s+/);
    const suites = field('Suites')?.split(/\s+/) ?? [];
    if (uris?.[0] && suites.includes(suite)) return uris[0].replace(/\/+$/, '');
  }
  return undefined;
}

/** The host's Debian mirror (what apt uses here), or {@link FALLBACK_MIRROR}. */
export async function debianMirror(suite = DEBIAN_SUITE): Promise<string> {
  const text = await readFile(DEBIAN_SOURCES, 'utf8').catch(() => '');
  return mirrorFromSources(text, suite) ?? FALLBACK_MIRROR;
}

/** The validated inputs that name a tarball. */
export interface DebianRootfsInputs {
  readonly format: string;
  readonly suite: string;
  readonly variant: string;
  readonly packages: readonly string[];
  readonly mirror: string;
}

/** Checks every input that reaches mmdebstrap's argv; packages sorted and deduplicated. */
export function debianRootfsInputs(options: { packages: readonly string[]; suite?: string; variant?: string; mirror: string }): DebianRootfsInputs {
  const suite = options.suite ?? DEBIAN_SUITE;
  const variant = options.variant ?? 'minbase';
  if (!SUITE_NAME.test(suite)) throw new Error(`debian rootfs: bad suite ${JSON.stringify(suite)}`);
  if (!VARIANTS.has(variant)) throw new Error(`debian rootfs: bad variant ${JSON.stringify(variant)}`);
  if (!MIRROR.test(options.mirror)) throw new Error(`debian rootfs: bad mirror ${JSON.stringify(options.mirror)}`);
  for (const name of options.packages) {
    if (!PACKAGE_NAME.test(name)) throw new Error(`debian rootfs: bad package name ${JSON.stringify(name)}`);
  }
  const packages = [...new Set(options.packages)].sort();
  return { format: DEBIAN_ROOTFS_FORMAT, suite, variant, packages, mirror: options.mirror };
}

/** The cache key: sha256 of the inputs, 16 hex digits (collisions are irrelevant at this scale). */
export function debianRootfsKey(inputs: DebianRootfsInputs): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

/** mmdebstrap's argv: `--mode=root` as root (CI), `--mode=unshare` (user namespaces) otherwise. */
export function mmdebstrapArgs(inputs: DebianRootfsInputs, output: string, asRoot: boolean): string[] {
  return [
    `--mode=${asRoot ? 'root' : 'unshare'}`,
    `--variant=${inputs.variant}`,
    '--format=tar',
    ...(inputs.packages.length > 0 ? [`--include=${inputs.packages.join(',')}`] : []),
    inputs.suite,
    output,
    `deb ${inputs.mirror} ${inputs.suite} main`,
  ];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  );
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `lock` (exclusive create holding our pid); a lock of a dead process is taken over. */
async function acquireLock(lock: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lock, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(owner) && owner > 0 && !pidAlive(owner)) {
      await rm(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`debian rootfs: ${lock} is held by process ${owner} for more than ${LOCK_WAIT_MS / 60_000} min`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/**
 * The cached Debian root tarball for `packages` (built with mmdebstrap when missing). Needs
 * `mmdebstrap` (Debian package of the same name) and, when not root, user namespaces.
 */
export async function debianRootfs(options: DebianRootfsOptions): Promise<DebianRootfs> {
  const env = options.env ?? process.env;
  const mirror = options.mirror ?? (await debianMirror(options.suite));
  const inputs = debianRootfsInputs({ packages: options.packages, mirror, ...(options.suite ? { suite: options.suite } : {}), ...(options.variant ? { variant: options.variant } : {}) });
  const dir = options.cacheDir ?? debianCacheDir(env);
  const tarball = join(dir, `${debianRootfsKey(inputs)}.tar`);
  if (await exists(tarball)) return { tarball, cached: true, seconds: 0 };
  await mkdir(dir, { recursive: true });
  const release = await acquireLock(`${tarball}.lock`);
  try {
    // Another process may have built it while this one waited for the lock.
    if (await exists(tarball)) return { tarball, cached: true, seconds: 0 };
    // mmdebstrap picks the output format by name, so the temp name keeps the .tar suffix.
    const temp = join(dir, `.${debianRootfsKey(inputs)}.${process.pid}.tmp.tar`);
    const asRoot = process.getuid?.() === 0;
    options.onBuild?.(`mmdebstrap ${inputs.suite} (${inputs.variant}, ${inputs.packages.length} packages) → ${tarball}`);
    const started = performance.now();
    try {
      await execa('mmdebstrap', mmdebstrapArgs(inputs, temp, asRoot), {
        env: { ...env, PATH: `${env.PATH ?? ''}:/usr/sbin:/sbin` },
        stdin: 'ignore',
        // mmdebstrap is chatty; keep its output for the error message only.
        all: true,
      }).catch((error: { all?: string; shortMessage?: string }) => {
        const tail = (error.all ?? '').trim().split('\n').slice(-15).join('\n');
        throw new Error(`mmdebstrap failed (${error.shortMessage ?? 'error'}):\n${tail}`);
      });
      const handle = await open(temp, 'r+');
      await handle.sync();
      await handle.close();
      await rename(temp, tarball);
    } finally {
      await rm(temp, { force: true });
    }
    return { tarball, cached: false, seconds: (performance.now() - started) / 1000 };
  } finally {
    await release();
  }
}
