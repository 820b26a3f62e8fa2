import { throwIfAborted } from '../errors.js';
import type { FilesystemSession } from '../ext/types.js';
import { readTextFile } from './image-path.js';
import { selectOperations } from './operations/index.js';
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
}

/**
 * Runs the selected template operations, in order, on an open (writable) filesystem and reports
 * each one, plus the files that carry placeholders afterwards. Operations are idempotent: running
 * them on a templated image reports `not-applicable` and changes nothing.
 */
export async function applyTemplateOperations(
  fs: FilesystemSession,
  options: ApplyOptions = {},
): Promise<{ operations: OperationReport[]; files: TemplatedFile[] }> {
  const operations: OperationReport[] = [];
  const owned = new Set<string>();
  for (const { operation, selected } of selectOperations(options.ops, options.skip)) {
    throwIfAborted(options.signal);
    if (!selected) {
      operations.push({ name: operation.name, status: 'skipped' });
      continue;
    }
    const outcome = await operation.apply(fs);
    operations.push({ name: operation.name, status: outcome.status, detail: outcome.detail });
    for (const file of outcome.files) owned.add(file);
  }
  const files: TemplatedFile[] = [];
  for (const path of [...owned].sort()) {
    const file = await readTextFile(fs, path);
    const placeholders = file ? findPlaceholders(file.text) : [];
    if (placeholders.length > 0) files.push({ path, placeholders });
  }
  return { operations, files };
}
