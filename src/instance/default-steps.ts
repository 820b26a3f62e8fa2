import { DiskwrightError } from '../errors.js';
import { runE2fsTool } from '../e2fs/index.js';
import { withFilesystem } from '../ext/index.js';
import { readSuperblock } from '../extmeta/index.js';
import { copyUsedBlocks } from './copy-used.js';
import { findPlaceholders, renderPlaceholders } from '../template/index.js';
import { readJsonFile } from './config.js';
import type { CheckOutcome, PipelineSteps, RenderedFile, TemplateFileEntry, TemplateManifestLike } from './steps.js';

/** Most files a manifest may list for rendering (they are a handful of config files). */
export const MAX_MANIFEST_FILES = 256;
/** Largest file the pipeline renders in memory (config files are small). */
export const MAX_RENDERED_FILE_BYTES = 4 * 1024 * 1024;

/** e2fsck exit code → status (e2fsck(8): 0 clean, 1/2 fixed, 4 uncorrected, 8+ operational error). */
export function fsckStatus(exitCode: number): CheckOutcome['status'] {
  if (exitCode === 0) return 'clean';
  if (exitCode >= 8) return 'error';
  if ((exitCode & 4) !== 0) return 'uncorrectable';
  return 'fixed';
}

/** Reads `<template>.diskwright.json` and checks the fields the pipeline relies on. */
export async function readManifestForInstance(template: string): Promise<TemplateManifestLike> {
  const path = `${template}.diskwright.json`;
  const json = await readJsonFile(path);
  if (json === undefined) {
    throw new DiskwrightError('E_TEMPLATE', `template ${template} has no manifest (${path})`, {
      path,
      hint: 'make templates with `diskwright template make`; it records the placeholders and the kernel',
    });
  }
  const manifest = json as { files?: unknown; kernel?: unknown; filesystem?: unknown };
  const files = manifest.files;
  if (!Array.isArray(files) || files.length > MAX_MANIFEST_FILES) {
    throw new DiskwrightError('E_TEMPLATE', `manifest ${path} has no valid \`files\` list (at most ${MAX_MANIFEST_FILES})`, { path });
  }
  const entries: TemplateFileEntry[] = files.map((file: unknown, i) => {
    const entry = file as { path?: unknown; placeholders?: unknown };
    if (typeof entry?.path !== 'string' || !Array.isArray(entry.placeholders) || !entry.placeholders.every((p) => typeof p === 'string')) {
      throw new DiskwrightError('E_TEMPLATE', `manifest ${path}: files[${i}] needs a string \`path\` and a \`placeholders\` list`, { path });
    }
    return { path: entry.path, placeholders: entry.placeholders as string[] };
  });
  const kernel = manifest.kernel as { kernel?: unknown; initrd?: unknown; version?: unknown } | undefined;
  return {
    files: entries,
    ...(kernel && typeof kernel.kernel === 'string'
      ? { kernel: { kernel: kernel.kernel, ...(typeof kernel.initrd === 'string' ? { initrd: kernel.initrd } : {}), ...(typeof kernel.version === 'string' ? { version: kernel.version } : {}) } }
      : {}),
  };
}

async function e2fsck(image: string, args: string[], signal?: AbortSignal): Promise<CheckOutcome> {
  const result = await runE2fsTool('e2fsck', [...args, image], signal ? { signal } : {});
  return { exitCode: result.exitCode, status: fsckStatus(result.exitCode), output: `${result.stdout}${result.stderr}` };
}

/**
 * Replaces the placeholders in the listed files inside the image (no mount): one write session,
 * committed only when every file rendered; modes and owners are kept. Reports what each file had.
 */
export async function renderTemplateFiles(
  image: string,
  files: readonly TemplateFileEntry[],
  values: Readonly<Record<string, string>>,
  signal?: AbortSignal,
): Promise<RenderedFile[]> {
  return withFilesystem(image, { write: true, ...(signal ? { signal } : {}) }, async (fs) => {
    const report: RenderedFile[] = [];
    for (const file of files) {
      const info = await fs.stat(file.path);
      if (info.kind !== 'file') throw new DiskwrightError('E_TEMPLATE', `${file.path} in the image is a ${info.kind}, not a file`, { path: file.path });
      if (info.size > MAX_RENDERED_FILE_BYTES) {
        throw new DiskwrightError('E_LIMIT', `${file.path} is ${info.size} bytes; placeholder files may be at most ${MAX_RENDERED_FILE_BYTES}`, { path: file.path });
      }
      const text = await fs.readText(file.path);
      const before = findPlaceholders(text);
      const rendered = renderPlaceholders(text, values);
      const left = findPlaceholders(rendered).filter((p) => p in values || file.placeholders.includes(p));
      if (left.length > 0) {
        throw new DiskwrightError('E_TEMPLATE', `${file.path} still contains ${left.join(', ')} after rendering`, { path: file.path });
      }
      if (rendered !== text) await fs.writeFile(file.path, rendered, { mode: info.mode, uid: info.uid, gid: info.gid });
      report.push({ path: file.path, replaced: before.filter((p) => p in values) });
    }
    return report;
  });
}

/**
 * The pipeline's real operations: a used-blocks copy (grown in the same pass), the WASM e2fsck and
 * resize2fs (no host e2fsprogs), D's in-image editing, B's superblock parser.
 */
export const defaultSteps: PipelineSteps = {
  readManifest: readManifestForInstance,
  readSuperblock: async (image) => {
    const sb = await readSuperblock(image);
    return { blockSize: sb.blockSize, blocksCount: sb.blocksCount, needsRecovery: sb.needsRecovery };
  },
  copy: (src, dst, options) => copyUsedBlocks(src, dst, options),
  check: (image, { mode, force, signal }) => e2fsck(image, [mode === 'preen' ? '-p' : '-n', ...(force ? ['-f'] : [])], signal),
  grow: async (image, { signal, force }) => {
    const result = await runE2fsTool('resize2fs', [...(force ? ['-f'] : []), image], signal ? { signal } : {});
    if (result.exitCode !== 0) {
      throw new DiskwrightError('E_EXTFS', `resize2fs failed (exit ${result.exitCode}): ${`${result.stderr}${result.stdout}`.trim().split('\n').pop() ?? ''}`);
    }
    return result;
  },
  render: renderTemplateFiles,
};
