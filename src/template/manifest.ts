import { readFile, stat } from 'node:fs/promises';
import { DiskwrightError, LimitError } from '../errors.js';
import { withAtomicOutput } from '../io/atomic.js';
import { hasPendingRenames, pendingRenamesError } from '../io/rename-set.js';
import type { OperationReport, TemplatedFile } from './apply.js';
import type { FilesystemFacts } from './filesystem.js';

/** The manifest of a template: what `template make` did and which files carry placeholders. */
export interface TemplateManifest {
  readonly version: 1;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly source: {
    /** Absolute host path of the disk image. */
    readonly disk: string;
    readonly partition: number;
    /** First sector and length in sectors (of `sectorSize` bytes). */
    readonly start: number;
    readonly sectors: number;
    readonly sectorSize: number;
  };
  readonly filesystem: FilesystemFacts;
  readonly files: readonly TemplatedFile[];
  readonly operations: readonly OperationReport[];
  readonly kernel?: { readonly version: string; readonly kernel: string; readonly initrd?: string };
  /** The NIC name the network configuration was written for (absent in manifests before it was recorded: eth0). */
  readonly network?: { readonly interface: string };
  /** Guest kernel arguments every instance needs (`net.ifnames=0` for eth0, `noresume` without swap). */
  readonly kernelArgs?: readonly string[];
}

/** Manifests are small; anything larger is not ours. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
export const MANIFEST_SUFFIX = '.diskwright.json';

/** `<template>.diskwright.json`, beside the template. */
export function manifestPath(template: string): string {
  return `${template}${MANIFEST_SUFFIX}`;
}

/** The manifest file's bytes. */
export function serializeTemplateManifest(manifest: TemplateManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Writes the manifest atomically (temp file beside it, fsync, rename). */
export async function writeTemplateManifest(template: string, manifest: TemplateManifest, options: { overwrite?: boolean } = {}): Promise<void> {
  await withAtomicOutput(
    manifestPath(template),
    async (handle) => {
      await handle.writeFile(serializeTemplateManifest(manifest));
    },
    { overwrite: options.overwrite },
  );
}

function invalid(path: string, why: string): DiskwrightError {
  return new DiskwrightError('E_TEMPLATE', `template manifest ${path} is invalid: ${why}`, {
    path,
    hint: 'remake the template with `diskwright template make`',
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const PLACEHOLDER = /^[A-Z][A-Z0-9_]*-TMPL$/;
const STATUSES = new Set(['applied', 'not-applicable', 'skipped']);
/** A Linux interface name (IFNAMSIZ 16 with the NUL), as `--interface` accepts it. */
export const INTERFACE_NAME = /^(?!\.\.?$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const KERNEL_ARG = /^[A-Za-z0-9_][A-Za-z0-9_.,:=/+-]*$/;

/** Checks a parsed manifest's shape (it comes from a file anyone could have edited). */
export function parseTemplateManifest(value: unknown, path = 'manifest'): TemplateManifest {
  if (!isObject(value)) throw invalid(path, 'not a JSON object');
  if (value.version !== 1) throw invalid(path, `unsupported version ${JSON.stringify(value.version)} (expected 1)`);
  if (typeof value.createdAt !== 'string') throw invalid(path, 'createdAt is missing');
  const source = value.source;
  if (!isObject(source) || typeof source.disk !== 'string' || !Number.isSafeInteger(source.partition) || !Number.isSafeInteger(source.start) || !Number.isSafeInteger(source.sectors)) {
    throw invalid(path, 'source must have disk, partition, start and sectors');
  }
  const fsFacts = value.filesystem;
  if (!isObject(fsFacts) || typeof fsFacts.kind !== 'string' || typeof fsFacts.uuid !== 'string' || !Number.isSafeInteger(fsFacts.blockSize) || !Number.isSafeInteger(fsFacts.blocksCount)) {
    throw invalid(path, 'filesystem must have kind, uuid, blockSize and blocksCount');
  }
  if (!Array.isArray(value.files)) throw invalid(path, 'files must be a list');
  for (const file of value.files as unknown[]) {
    if (!isObject(file) || typeof file.path !== 'string' || !file.path.startsWith('/') || file.path.split('/').includes('..')) {
      throw invalid(path, `file entry ${JSON.stringify(file)} needs an absolute in-image path without ..`);
    }
    if (!Array.isArray(file.placeholders) || !file.placeholders.every((p) => typeof p === 'string' && PLACEHOLDER.test(p))) {
      throw invalid(path, `placeholders of ${file.path} must be NAME-TMPL strings`);
    }
  }
  if (!Array.isArray(value.operations)) throw invalid(path, 'operations must be a list');
  for (const op of value.operations as unknown[]) {
    if (!isObject(op) || typeof op.name !== 'string' || !STATUSES.has(op.status as string)) {
      throw invalid(path, `operation entry ${JSON.stringify(op)} needs a name and a status`);
    }
  }
  if (value.network !== undefined && (!isObject(value.network) || typeof value.network.interface !== 'string' || !INTERFACE_NAME.test(value.network.interface))) {
    throw invalid(path, 'network.interface must be an interface name');
  }
  if (value.kernelArgs !== undefined && (!Array.isArray(value.kernelArgs) || !value.kernelArgs.every((a) => typeof a === 'string' && KERNEL_ARG.test(a)))) {
    throw invalid(path, 'kernelArgs must be a list of kernel arguments without spaces or quotes');
  }
  if (value.kernel !== undefined) {
    const k = value.kernel;
    if (!isObject(k) || typeof k.version !== 'string' || typeof k.kernel !== 'string' || (k.initrd !== undefined && typeof k.initrd !== 'string')) {
      throw invalid(path, 'kernel must have version and kernel (and optionally initrd) paths');
    }
  }
  return value as unknown as TemplateManifest;
}

/** Reads and checks the manifest beside a template (`<template>.diskwright.json`). */
export async function readTemplateManifest(templatePath: string): Promise<TemplateManifest> {
  // A template make killed past its commit point: the manifest may not match the template yet.
  if (hasPendingRenames(templatePath)) throw pendingRenamesError(templatePath);
  const path = manifestPath(templatePath);
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') {
      throw new DiskwrightError('E_NOT_FOUND', `${templatePath} has no template manifest (${path})`, {
        path,
        hint: 'make the template with `diskwright template make DISK --partition N -o TEMPLATE`',
        cause: error,
      });
    }
    throw new DiskwrightError('E_IO', `cannot read ${path}: ${error.message}`, { path, cause: error });
  });
  if (info.size > MAX_MANIFEST_BYTES) {
    throw new LimitError(`template manifest ${path} is ${info.size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`, { path, actual: info.size, expected: MAX_MANIFEST_BYTES });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw invalid(path, `not JSON (${(error as Error).message.split('\n')[0]})`);
  }
  const manifest = parseTemplateManifest(parsed, path);
  const template = await stat(templatePath).catch(() => undefined);
  if (!template?.isFile()) {
    throw new DiskwrightError('E_NOT_FOUND', `template ${templatePath} not found (only its manifest ${path} exists)`, {
      path: templatePath,
      hint: 'remake the template with `diskwright template make`, or remove the stale manifest',
    });
  }
  return manifest;
}
