import { mkdir, rm } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import type { FilesystemSession, OpenFilesystemOptions } from '../ext/types.js';
import { listDirectory, resolveInImage } from './image-path.js';
import { compareVersions } from './version-sort.js';
import { openFilesystem } from './filesystem.js';

/** Where kernels live: /boot on the root filesystem, or the root of a separate /boot partition. */
export const KERNEL_DIRS = ['/boot', '/'] as const;
/** A kernel version usable as a host file name (no separators, no leading dot). */
const SAFE_VERSION = /^[A-Za-z0-9+_~][A-Za-z0-9.+_~-]*$/;
/** Initrd names distributions use for kernel version V (Debian, Fedora, SUSE/Arch). */
export function initrdNames(version: string): string[] {
  return [`initrd.img-${version}`, `initramfs-${version}.img`, `initrd-${version}`, `initrd-${version}.img`];
}

/** The kernel/initrd pair found in an image: in-image entry paths and the files they resolve to. */
export interface KernelCandidate {
  readonly version: string;
  /** The `vmlinuz-VERSION` entry (may be a symlink). */
  readonly kernelEntry: string;
  /** The regular file it resolves to. */
  readonly kernelFile: string;
  readonly initrdEntry?: string;
  readonly initrdFile?: string;
}

/**
 * Finds the newest kernel (`vmlinuz-*`, version order of `sort -V`) in /boot (or at the root of a
 * /boot filesystem), following symlinks, and the initrd of the same version next to it. When no
 * `vmlinuz-*` entry exists, the `/vmlinuz` (or `/boot/vmlinuz`) symlink is followed.
 */
export async function findKernel(fs: FilesystemSession): Promise<KernelCandidate> {
  const found: { version: string; entry: string; file: string; dir: string }[] = [];
  for (const dir of KERNEL_DIRS) {
    for (const entry of await listDirectory(fs, dir)) {
      const match = /^vmlinuz-(.+)$/.exec(entry.name);
      if (!match || !SAFE_VERSION.test(match[1]!)) continue;
      const path = posix.join(dir, entry.name);
      const resolved = await resolveInImage(fs, path);
      if (resolved?.stat.kind === 'file') found.push({ version: match[1]!, entry: path, file: resolved.path, dir });
    }
    if (found.length > 0) break;
  }
  if (found.length === 0) {
    for (const link of ['/vmlinuz', '/boot/vmlinuz']) {
      const resolved = await resolveInImage(fs, link);
      const match = resolved && /^vmlinuz-(.+)$/.exec(posix.basename(resolved.path));
      if (resolved?.stat.kind === 'file' && match && SAFE_VERSION.test(match[1]!)) {
        found.push({ version: match[1]!, entry: link, file: resolved.path, dir: posix.dirname(resolved.path) });
        break;
      }
    }
  }
  const newest = found.sort((a, b) => compareVersions(a.version, b.version)).at(-1);
  if (!newest) {
    throw new DiskwrightError('E_NOT_FOUND', 'no kernel (/boot/vmlinuz-*) in this filesystem', {
      path: '/boot',
      hint: 'if /boot is a separate partition, pass --partition with its number (see `diskwright partitions`)',
    });
  }
  for (const name of initrdNames(newest.version)) {
    const entry = posix.join(newest.dir, name);
    const resolved = await resolveInImage(fs, entry);
    if (resolved?.stat.kind === 'file') {
      return { version: newest.version, kernelEntry: newest.entry, kernelFile: newest.file, initrdEntry: entry, initrdFile: resolved.path };
    }
  }
  return { version: newest.version, kernelEntry: newest.entry, kernelFile: newest.file };
}

/** Kernel files copied to the host: version and absolute host paths. */
export interface KernelFiles {
  readonly version: string;
  readonly kernel: string;
  readonly initrd?: string;
}

export interface ExtractKernelOptions {
  /** Partition of a disk image holding the filesystem (omit for a filesystem image, e.g. a template). */
  readonly partition?: number;
  /** Host directory for the files (created if missing). */
  readonly outDir: string;
  /** Replace files of the same name in outDir. */
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Copies the newest kernel and its initrd out of an image into `outDir` as `vmlinuz-VERSION` and
 * the initrd's own name (no VM, no mount). Each output is written atomically; when the initrd copy
 * fails the kernel copied before it is removed again.
 */
export async function extractKernel(image: string, options: ExtractKernelOptions): Promise<KernelFiles> {
  const open: OpenFilesystemOptions = { partition: options.partition, signal: options.signal };
  await mkdir(options.outDir, { recursive: true });
  const outDir = resolve(options.outDir);
  return openFilesystem(image, open, async (fs) => {
    const found = await findKernel(fs);
    throwIfAborted(options.signal);
    const kernel = join(outDir, `vmlinuz-${found.version}`);
    await fs.copyOut(found.kernelFile, kernel, { overwrite: options.overwrite });
    if (!found.initrdFile || !found.initrdEntry) return { version: found.version, kernel };
    const initrd = join(outDir, posix.basename(found.initrdEntry));
    try {
      throwIfAborted(options.signal);
      await fs.copyOut(found.initrdFile, initrd, { overwrite: options.overwrite });
    } catch (error) {
      await rm(kernel, { force: true });
      throw error;
    }
    return { version: found.version, kernel, initrd };
  });
}
