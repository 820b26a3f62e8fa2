import { throwIfAborted } from '../errors.js';
import type { FilesystemSession } from '../ext/types.js';
import { selectOperations } from './operations/index.js';
import { DEFAULT_CONTEXT, type OperationContext } from './operations/types.js';
import { findPlaceholders } from './placeholders.js';

/** What happened to one operation (the manifest's `operations` entries). */
export interface OperationReport {
  readonly name: string;
  readonly status: 'applied' | 'not-applicable' | 'skipped';
  readonly detail?: string;
}

/** A file in the template and the placeholders it carries. */
export interface TemplatedFile {
  readonly path: string;
  readonly placeholders: string[];
}

export interface ApplyOptions {
  /** Run only these operations (default: all). */
  readonly ops?: readonly string[];
  /** Do not run these. */
  readonly skip?: readonly string[];
  readonly signal?: AbortSignal;
  /** What the operations know beyond the files (the NIC name, the filesystem's identity). */
  readonly context?: OperationContext;
  /** Each selected operation starting and finishing (a display's steps). */
  readonly onOperation?: (event: { readonly name: string; readonly phase: 'start' | 'done'; readonly seconds?: number }) => void;
}

/**
 * Runs the selected template operations, in order, on an open (writable) filesystem and reports
 * each one, plus the files that carry placeholders afterwards. Operations are idempotent: running
 * them on a templated image reports `not-applicable` and changes nothing.
 */
export async function applyTemplateOperations(
  fs: FilesystemSession,
  options: ApplyOptions = {},
): Promise<{ operations: OperationReport[]; files: TemplatedFile[]; kernelArgs: string[] }> {
  const operations: OperationReport[] = [];
  const kernelArgs = new Set<string>();
  const owned = new Map<string, string>();
  for (const { operation, selected } of selectOperations(options.ops, options.skip)) {
    throwIfAborted(options.signal);
    if (!selected) {
      operations.push({ name: operation.name, status: 'skipped' });
      continue;
    }
    options.onOperation?.({ name: operation.name, phase: 'start' });
    const started = performance.now();
    const outcome = await operation.apply(fs, options.context ?? DEFAULT_CONTEXT);
    options.onOperation?.({ name: operation.name, phase: 'done', seconds: (performance.now() - started) / 1000 });
    operations.push({ name: operation.name, status: outcome.status, detail: outcome.detail });
    for (const file of outcome.files) owned.set(file.path, file.text);
    for (const arg of outcome.kernelArgs ?? []) kernelArgs.add(arg);
  }
  const files: TemplatedFile[] = [];
  // Later operations never touch an earlier one's files, so the texts they reported are current.
  for (const [path, text] of [...owned].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const placeholders = findPlaceholders(text);
    if (placeholders.length > 0) files.push({ path, placeholders });
  }
  return { operations, files, kernelArgs: [...kernelArgs] };
}
