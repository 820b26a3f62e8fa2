import type { FilesystemSession } from '../../ext/types.js';

/** What one operation did to the image. */
export interface OperationOutcome {
  readonly status: 'applied' | 'not-applicable';
  /** One line: what changed, or why nothing had to. */
  readonly detail: string;
  /**
   * In-image files this operation owns that exist afterwards (changed now or already templated),
   * with their content; the manifest records the placeholders they carry.
   */
  readonly files: readonly OwnedFile[];
  /** Guest kernel arguments an instance needs because of what the operation did (e.g. `noresume`). */
  readonly kernelArgs?: readonly string[];
}

/** A file an operation owns and its current text. */
export interface OwnedFile {
  readonly path: string;
  readonly text: string;
}

/** The interface name every network operation configures unless told otherwise (see docs/template.md). */
export const DEFAULT_INTERFACE = 'eth0';

/** What the operations know about the template beyond its files. */
export interface OperationContext {
  /** The instance's NIC name the network configuration is written for (default eth0). */
  readonly interface: string;
  /** The root filesystem's own identity (its fstab entry stays; entries naming other devices go). */
  readonly filesystem?: { readonly uuid: string; readonly label: string };
}

/** The context used when none is given (unit tests, library callers). */
export const DEFAULT_CONTEXT: OperationContext = { interface: DEFAULT_INTERFACE };

/** A named, idempotent sysprep step over an open filesystem. */
export interface TemplateOperation {
  readonly name: string;
  readonly description: string;
  apply(fs: FilesystemSession, context?: OperationContext): Promise<OperationOutcome>;
}

export function applied(detail: string, files: readonly OwnedFile[] = []): OperationOutcome {
  return { status: 'applied', detail, files };
}

export function notApplicable(detail: string, files: readonly OwnedFile[] = []): OperationOutcome {
  return { status: 'not-applicable', detail, files };
}

/** Owner and modes of files and directories the operations create. */
export const ROOT_FILE = { mode: 0o644, uid: 0, gid: 0 } as const;
export const ROOT_DIR = { mode: 0o755, uid: 0, gid: 0 } as const;

/** Splits text into lines without the final newline's empty element. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Joins lines into text with a final newline (empty text for no lines). */
export function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
