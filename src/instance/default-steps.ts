import { DiskwrightError, isDiskwrightError } from '../errors.js';
import { checkFilesystem, growFilesystem, runE2fsTool } from '../e2fs/index.js';
import { diskFactoryModule, runToolDirect } from '../e2fs/in-place.js';
import { withFilesystem } from '../ext/index.js';
import { readSuperblock } from '../extmeta/index.js';
import { copyUsedBlocks } from '../io/index.js';
import { convertImage } from '../disk/qcow2/convert.js';
import { openImage } from '../disk/open.js';
import { createThinOverlay } from './thin.js';
import { findPlaceholders, MANIFEST_SUFFIX, readTemplateManifest, renderPlaceholders } from '../template/index.js';
import { applyCustomization, readTemplateFacts, type Customization, type CustomizeReport } from './customize.js';
import type { PipelineSteps, RenderedFile, TemplateFileEntry, TemplateManifestLike } from './steps.js';

/** Largest file the pipeline renders in memory (config files are small). */
export const MAX_RENDERED_FILE_BYTES = 4 * 1024 * 1024;

/** Reads the template manifest (E's `readTemplateManifest`: `<template>.diskwright.json`, schema-checked). */
export async function readManifestForInstance(template: string): Promise<TemplateManifestLike> {
  try {
    return await readTemplateManifest(template);
  } catch (error) {
    if (isDiskwrightError(error, 'E_NOT_FOUND') && error.path?.endsWith(MANIFEST_SUFFIX)) {
      throw new DiskwrightError('E_TEMPLATE', `template ${template} has no manifest (${error.path})`, {
        path: error.path,
        hint: 'make templates with `diskwright template make`; it records the placeholders and the kernel',
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Replaces the placeholders in the listed files inside the image (no mount): one write session,
 * committed only when every file rendered; modes and owners are kept. Reports what each file had.
 * Only for the pipeline's private temp image, which its final `e2fsck -fn` gates (no open check).
 */
export async function renderTemplateFiles(
  image: string,
  files: readonly TemplateFileEntry[],
  values: Readonly<Record<string, string>>,
  signal?: AbortSignal,
): Promise<RenderedFile[]> {
  // The image is the pipeline's private temp file (fsynced once before the rename): no undo log;
  // the pipeline's final e2fsck -fn gates it, so the session's open check is not needed.
  return withFilesystem(image, { write: true, scratch: true, checkedBeforePublish: true, ...(signal ? { signal } : {}) }, async (fs) => {
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
 * Applies the customization in one write session (on the pipeline's private temp image, gated by
 * its final `e2fsck -fn`: no open check), then sets a new filesystem UUID with tune2fs
 * (WASM) when asked: `-f` because the instance was never mounted since its copy was checked.
 */
export async function customizeImage(image: string, customization: Customization, options: { fsUuid?: string; signal?: AbortSignal }): Promise<CustomizeReport> {
  const signal = options.signal ? { signal: options.signal } : {};
  const report = await withFilesystem(image, { write: true, scratch: true, checkedBeforePublish: true, ...signal }, (fs) => applyCustomization(fs, customization));
  if (options.fsUuid !== undefined) {
    // Through the block layer (a thin instance is a qcow2); the disk is the pipeline's private temp.
    const result = await runToolDirect('tune2fs', ['-f', '-U', options.fsUuid, image], image, signal);
    if (result.exitCode !== 0) {
      throw new DiskwrightError('E_EXTFS', `setting the filesystem UUID of ${image} failed (exit ${result.exitCode}): ${(result.stderr || result.stdout).trim().split('\n').pop()}`, { path: image });
    }
    report.push(`filesystem UUID ${options.fsUuid}`);
  }
  return report;
}

/**
 * The pipeline's real operations: io's used-blocks copy (grown in the same pass), C's WASM e2fsck and
 * resize2fs (no host e2fsprogs), D's in-image editing, E's manifest reader, B's superblock parser.
 */
export const defaultSteps: PipelineSteps = {
  readManifest: readManifestForInstance,
  readSuperblock: async (image) => {
    // Through the block layer: a qcow2 template's superblock is at guest byte 1024, not file byte 1024.
    const disk = openImage(image, { readOnly: true });
    try {
      const sb = await readSuperblock(disk);
      return { blockSize: sb.blockSize, blocksCount: sb.blocksCount, needsRecovery: sb.needsRecovery };
    } finally {
      disk.close();
    }
  },
  copy: (src, dst, options) => copyUsedBlocks(src, dst, options),
  overlay: async (template, image, { size }) => createThinOverlay(template, image, { size }),
  // The overlay's chain is diskwright's own (recorded format and template identity): trusted.
  flatten: (overlay, output, { signal, onProgress }) =>
    convertImage(overlay, output, { inputFormat: 'qcow2', outputFormat: 'qcow2', ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) }),
  // Writes (preen, resize2fs) only ever reach the pipeline's private temp copy, which the pipeline
  // fsyncs and renames at the end: committed without a record or fsync of their own.
  check: (image, { mode, force, signal, direct, recordReads }) =>
    checkFilesystem(image, { mode, force, durable: false, ...(direct ? { direct } : {}), ...(recordReads ? { recordReads } : {}), ...(signal ? { signal } : {}) }),
  grow: (image, { signal, force, direct }) => growFilesystem(image, { durable: false, ...(force ? { force } : {}), ...(direct ? { direct } : {}), ...(signal ? { signal } : {}) }),
  render: renderTemplateFiles,
  inspectTemplate: (template, request, signal) => withFilesystem(template, signal ? { signal } : {}, (fs) => readTemplateFacts(fs, request)),
  customize: customizeImage,
  // Only resize2fs: it compiles in a worker thread. Instantiating libext2fs here as well was
  // measured to slow the copy down (its set-up runs on the main thread, where the copy loop runs).
  warmUp: async (_template, signal) => {
    // With the disk factory: resize2fs later runs on an overlay, and importing the factory (and the
    // block layer under it) into the worker costs ~0.2 s the first time.
    await runE2fsTool('resize2fs', [], { diskFactory: { module: diskFactoryModule(), args: { disks: [] } }, ...(signal ? { signal } : {}) }).catch(() => undefined);
  },
};
