import { chmod, copyFile, cp, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { DiskwrightError } from '../errors.js';
import { busyboxPath, fixturePath, readStaticBusybox } from './bootkit.js';

/** Directories a Debian-like root has that git cannot carry (empty) and the guest mounts on. */
const EMPTY_DIRS = [
  'boot', 'dev', 'home', 'mnt', 'proc', 'root', 'run', 'sys', 'tmp', 'usr/bin', 'usr/sbin', 'var/lib', 'var/log', 'var/tmp',
  'etc/network/if-pre-up.d', 'etc/network/if-up.d', 'etc/network/if-down.d', 'etc/network/if-post-down.d',
  'etc/network/interfaces.d',
] as const;
/** Files of the source tree that document it and do not belong in the image. */
const SKIP = new Set(['README']);
/** busybox applet paths look like `sbin/ifup`; anything else is ignored. */
const APPLET_PATH = /^(bin|sbin|usr\/bin|usr\/sbin)\/[a-z0-9][a-z0-9._[\]-]*$/;

export interface DemoRootOptions {
  /** Kernel and initrd to place in /boot as vmlinuz-VERSION / initrd.img-VERSION (what `template make --kernel-dir` finds). */
  readonly boot?: { readonly version: string; readonly kernel: string; readonly initrd: string };
  readonly busybox?: string;
  /** Leave busybox out (the host has no static one): the tree still carries /etc, not a userland. */
  readonly withoutBusybox?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Where the committed source of the demo root tree lives. */
export function demoRootSource(): string {
  return fixturePath('demo-root');
}

async function listApplets(busybox: string): Promise<string[]> {
  const result = await execa(busybox, ['--list-full'], { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new DiskwrightError('E_BOOT', `\`${busybox} --list-full\` failed: ${result.stderr.split('\n')[0] ?? ''}`);
  return result.stdout.split('\n').map((l) => l.trim()).filter((l) => APPLET_PATH.test(l));
}

/**
 * Builds the demo root tree in `outDir` (which must not exist or be empty): the committed Debian-like
 * /etc files and /sbin/init, a static busybox with its applet links, the usual empty directories,
 * /var/run → ../run, and optionally /boot with a kernel and initrd.
 */
export async function buildDemoRoot(outDir: string, options: DemoRootOptions = {}): Promise<{ applets: number; boot: boolean }> {
  const source = demoRootSource();
  await mkdir(outDir, { recursive: true });
  if ((await readdir(outDir)).length > 0) throw new DiskwrightError('E_EXISTS', `${outDir} is not empty`, { path: outDir });
  await cp(source, outDir, { recursive: true, filter: (src) => !SKIP.has(src.slice(source.length + 1)) });
  await chmod(join(outDir, 'sbin', 'init'), 0o755);
  for (const dir of EMPTY_DIRS) await mkdir(join(outDir, dir), { recursive: true });
  await chmod(join(outDir, 'tmp'), 0o1777);
  await symlink('../run', join(outDir, 'var', 'run'));

  let applets = 0;
  if (options.withoutBusybox) return { applets, boot: false };
  const busybox = busyboxPath({ busybox: options.busybox, env: options.env });
  const bytes = await readStaticBusybox(busybox);
  await mkdir(join(outDir, 'bin'), { recursive: true });
  await writeFile(join(outDir, 'bin', 'busybox'), bytes, { mode: 0o755 });
  for (const applet of await listApplets(busybox)) {
    const target = join(outDir, applet);
    if (applet === 'bin/busybox' || applet === 'sbin/init') continue;
    await mkdir(dirname(target), { recursive: true });
    try {
      await symlink('/bin/busybox', target);
      applets += 1;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  if (options.boot) {
    const { version, kernel, initrd } = options.boot;
    await copyFile(kernel, join(outDir, 'boot', `vmlinuz-${version}`));
    await copyFile(initrd, join(outDir, 'boot', `initrd.img-${version}`));
    // Debian keeps these two links at the top of the root.
    await symlink(`boot/vmlinuz-${version}`, join(outDir, 'vmlinuz'));
    await symlink(`boot/initrd.img-${version}`, join(outDir, 'initrd.img'));
  }
  return { applets, boot: options.boot !== undefined };
}
