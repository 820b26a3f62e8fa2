import { realpathSync } from 'node:fs';
import { DiskwrightError } from '../../errors.js';
import type { Disk } from '../types.js';
import { Qcow2Disk, type BackingRequest } from './image.js';
import { MAX_BACKING_DEPTH } from './limits.js';
import { RawFileDisk } from '../raw.js';
import { verifyBackingIdentity } from '../backing-identity.js';
import { refuseBlocking } from '../file-kind.js';

/** Opens a raw backing file (default: the block layer's RawFileDisk, read-only). */
export type RawOpener = (path: string) => Disk;

export interface ChainOptions {
  readonly readOnly?: boolean;
  /** Raw backing files (default: RawFileDisk, read-only). */
  readonly openRaw?: RawOpener;
  /** The top image is a private temp file being built (Qcow2OpenOptions.scratch). */
  readonly scratch?: boolean;
}

function real(path: string, from: string): string {
  try {
    return realpathSync(path);
  } catch (error) {
    throw new DiskwrightError('E_NOT_FOUND', `backing file ${path} of ${from} not found`, { path, cause: error, hint: 'restore the backing file or rebase the image (qemu-img rebase)' });
  }
}

/**
 * Opens a qcow2 image whose backing chain the caller trusts (the user said `--format qcow2` or
 * `--backing`, or diskwright's own records name the chain). Each layer's backing file is opened
 * read-only with the format its header records; a layer without a recorded backing format, a
 * loop, or a chain deeper than {@link MAX_BACKING_DEPTH} is refused.
 */
export function openQcow2Chain(path: string, options: ChainOptions = {}): Qcow2Disk {
  const seen = new Set<string>([real(path, path)]);
  const openRaw = options.openRaw ?? ((p: string) => RawFileDisk.open(p, { readOnly: true }));
  const opener = (depth: number) => (request: BackingRequest): Disk => {
    if (depth > MAX_BACKING_DEPTH) {
      throw new DiskwrightError('E_LIMIT', `backing chain of ${path} is deeper than ${MAX_BACKING_DEPTH}`, { path, hint: 'flatten it with qemu-img convert' });
    }
    const target = real(request.path, request.from);
    if (seen.has(target)) {
      throw new DiskwrightError('E_LOOP', `backing chain of ${path} loops back to ${target}`, { path: request.from, hint: 'the image is damaged; rebase it onto the right backing file' });
    }
    seen.add(target);
    // A header can name anything: a FIFO would block the open for ever.
    refuseBlocking(target, { name: `backing file ${target} of ${request.from}`, errorPath: request.from, hint: 'a backing file must be a disk image file; rebase the image onto one (qemu-img rebase)' });
    // An overlay diskwright made records who its backing file was: a changed one is refused.
    verifyBackingIdentity(request.from, request.path);
    if (request.format === 'raw') return openRaw(request.path);
    if (request.format === 'qcow2') return Qcow2Disk.open(request.path, { readOnly: true, openBacking: opener(depth + 1) });
    if (request.format === undefined) {
      throw new DiskwrightError('E_UNTRUSTED_BACKING', `${request.from} does not record the format of its backing file ${request.name}`, {
        path: request.from,
        hint: `diskwright does not guess backing formats; record it: qemu-img rebase -u -b ${request.name} -F raw|qcow2 ${request.from}`,
      });
    }
    throw new DiskwrightError('E_UNSUPPORTED_FEATURE', `backing format ${request.format} of ${request.from} is not supported (raw, qcow2)`, { path: request.from });
  };
  return Qcow2Disk.open(path, { readOnly: options.readOnly ?? true, openBacking: opener(1), ...(options.scratch ? { scratch: true } : {}) });
}
