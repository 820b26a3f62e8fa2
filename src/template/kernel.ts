import type { DiskFormat } from '../disk/types.js';
import type { ProgressCallback } from '../io/progress.js';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { tempPathBeside } from '../io/atomic.js';
import { join, posix, resolve } from 'node:path';
import { DiskwrightError, throwIfAborted } from '../errors.js';
import type { FilesystemSession } from '../ext/types.js';
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
  /** The image's format (`--format raw|qcow2`); default: diskwright's record, else the qcow2 magic. */
  readonly format?: DiskFormat;
  /** Called as the copy of each file starts, with its in-image entry; the callback it returns gets the copy's progress. */
  readonly onFile?: (entry: string) => ProgressCallback | undefined;
}

/** Kernel files copied to temp names in the output directory, renamed into place by `commit`. */
export interface StagedKernel {
  readonly files: KernelFiles;
  /** Renames the temp copies to their final names (refusing existing ones unless overwrite). */
  commit(): Promise<void>;
  /** The `[temp, final]` renames `commit` does, for a caller that renames them in one set with its own outputs. */
  readonly renames: readonly (readonly [temp: string, final: string])[];
  /** Refuses final names that appeared meanwhile (unless overwrite); `commit` checks this too. */
  assertFinalsAbsent(): Promise<void>;
  /** Removes the temp copies (and the output directory if this run created it). */
  discard(): Promise<void>;
}

/**
 * Finds the newest kernel in an open filesystem and copies it and its initrd to temp files in
 * `outDir` (created if missing); nothing appears under the final names until `commit`.
 */
export async function stageKernel(fs: FilesystemSession, options: Omit<ExtractKernelOptions, 'partition'>): Promise<StagedKernel> {
  const outDir = resolve(options.outDir);
  const found = await findKernel(fs);
  throwIfAborted(options.signal);
  const pairs: [from: string, temp: string, final: string, entry: string][] = [];
  const kernel = join(outDir, `vmlinuz-${found.version}`);
  pairs.push([found.kernelFile, tempPathBeside(kernel), kernel, found.kernelEntry]);
  const initrd = found.initrdEntry && found.initrdFile ? join(outDir, posix.basename(found.initrdEntry)) : undefined;
  if (initrd) pairs.push([found.initrdFile!, tempPathBeside(initrd), initrd, found.initrdEntry!]);
  if (!options.overwrite) for (const [, , final] of pairs) await assertAbsent(final);
  const createdDir = await mkdir(outDir, { recursive: true });
  const discard = async (): Promise<void> => {
    await Promise.all(pairs.map(([, temp]) => rm(temp, { force: true })));
    if (createdDir !== undefined) await rm(createdDir, { recursive: true, force: true });
  };
  try {
    for (const [from, temp, , entry] of pairs) {
      throwIfAborted(options.signal);
      const onProgress = options.onFile?.(entry);
      await fs.copyOut(from, temp, onProgress ? { onProgress } : {});
    }
  } catch (error) {
    await discard();
    throw error;
  }
  return {
    files: initrd ? { version: found.version, kernel, initrd } : { version: found.version, kernel },
    renames: pairs.map(([, temp, final]) => [temp, final] as const),
    async assertFinalsAbsent() {
      if (!options.overwrite) for (const [, , final] of pairs) await assertAbsent(final);
    },
    async commit() {
      if (!options.overwrite) for (const [, , final] of pairs) await assertAbsent(final);
      for (const [, temp, final] of pairs) await rename(temp, final);
    },
    discard,
  };
}

async function assertAbsent(path: string): Promise<void> {
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  if (exists) {
    throw new DiskwrightError('E_EXISTS', `${path} already exists`, { path, hint: 'pass --force to replace the kernel files' });
  }
}

/**
 * Copies the newest kernel and its initrd out of an image into `outDir` as `vmlinuz-VERSION` and
 * the initrd's own name (no VM, no mount). Both are copied to temp files first and renamed only
 * when both copies succeeded: a failure leaves `outDir` as it was.
 */
export async function extractKernel(image: string, options: ExtractKernelOptions): Promise<KernelFiles> {
  const staged = await openFilesystem(image, { partition: options.partition, signal: options.signal, ...(options.format ? { format: options.format } : {}) }, (fs) => stageKernel(fs, options));
  try {
    throwIfAborted(options.signal);
    await staged.commit();
  } catch (error) {
    await staged.discard();
    throw error;
  }
  return staged.files;
}
