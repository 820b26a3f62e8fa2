import type { ProgressCallback } from '../io/progress.js';
import type { Customization, CustomizationRequest, CustomizeReport, TemplateFacts } from './customize.js';

/** A template file that carries placeholders (from the template manifest). */
export interface TemplateFileEntry {
  readonly path: string;
  readonly placeholders: readonly string[];
}

/** The parts of the template manifest (`<template>.diskwright.json`) the instance pipeline reads. */
export interface TemplateManifestLike {
  readonly files: readonly TemplateFileEntry[];
  readonly filesystem?: { readonly uuid?: string; readonly blockSize?: number; readonly blocksCount?: number | bigint };
  readonly kernel?: { readonly version?: string; readonly kernel: string; readonly initrd?: string };
  /** Guest kernel arguments the template needs (`net.ifnames=0`, `noresume`). */
  readonly kernelArgs?: readonly string[];
}

/** The superblock facts the pipeline checks before copying. */
export interface SuperblockFacts {
  readonly blockSize: number;
  readonly blocksCount: bigint;
  readonly needsRecovery: boolean;
}

export interface CheckOutcome {
  readonly exitCode: number;
  readonly status: 'clean' | 'fixed' | 'uncorrectable' | 'error';
  readonly output: string;
  /** With `recordReads`: the byte ranges the check read, flat `[position, length, …]`. */
  readonly reads?: readonly number[];
}

/** What rendering did to one file. */
export interface RenderedFile {
  readonly path: string;
  readonly replaced: readonly string[];
}

/**
 * The filesystem-level operations of the pipeline. The defaults (`defaultSteps`) are the other
 * areas' library calls (sparse copy, WASM e2fsck/resize2fs, in-image editing); tests replace
 * single steps to inject failures.
 */
export interface PipelineSteps {
  readManifest(template: string): Promise<TemplateManifestLike>;
  readSuperblock(image: string): Promise<SuperblockFacts>;
  copy(src: string, dst: string, options: { size: number; signal?: AbortSignal; onProgress?: ProgressCallback }): Promise<unknown>;
  /**
   * Thin and standalone qcow2 instances: create `image` (the temp path) as a qcow2 overlay of
   * `size` bytes whose backing file is the raw template (instead of {@link copy}).
   */
  overlay(template: string, image: string, options: { size: number; signal?: AbortSignal }): Promise<unknown>;
  /** Standalone qcow2 instances: write `output` as a full qcow2 (no backing file) of the finished overlay. */
  flatten(overlay: string, output: string, options: { signal?: AbortSignal; onProgress?: ProgressCallback }): Promise<unknown>;
  /** `direct`: a preen writes the (new, private) qcow2 overlay itself, no overlay or commit. */
  check(image: string, options: { mode: 'check' | 'preen'; force: boolean; signal?: AbortSignal; direct?: boolean; recordReads?: boolean }): Promise<CheckOutcome>;
  /**
   * Grow to fill the file; `force` (resize2fs -f) when the fsck was done on the template instead;
   * `direct` as for {@link check}.
   */
  grow(image: string, options: { signal?: AbortSignal; force?: boolean; direct?: boolean }): Promise<unknown>;
  render(image: string, files: readonly TemplateFileEntry[], values: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<RenderedFile[]>;
  /** Reads what the customization needs from the template (read-only; only when something is asked for). */
  inspectTemplate(template: string, request: CustomizationRequest, signal?: AbortSignal): Promise<TemplateFacts>;
  /** Applies the customization (and a fresh random seed) to the instance image; a new fs UUID when given. */
  customize(image: string, customization: Customization, options: { fsUuid?: string; signal?: AbortSignal }): Promise<CustomizeReport>;
  /**
   * Optional: load what later steps need (WASM modules) while the copy runs. Read-only on the
   * template; errors are ignored (the real step reports them).
   */
  warmUp?(template: string, signal?: AbortSignal): Promise<void>;
}
