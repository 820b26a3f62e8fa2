/**
 * Linux swap signature (v1), the layout util-linux 2.38 `mkswap -U UUID [-L LABEL]` writes for a
 * 4 KiB page (mkswap.c, include/swapheader.h): the first 1024 bytes zeroed (no boot bits kept on a
 * partition or file), then version 1, last_page, nr_badpages 0, the UUID's 16 bytes, a 16-byte
 * label, and "SWAPSPACE2" in the last 10 bytes of the first page.
 */
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export const SWAP_PAGE_SIZE = 4096;
/** mkswap refuses fewer than 10 pages. */
export const MIN_SWAP_PAGES = 10;
const OFF_VERSION = 1024;
const OFF_LAST_PAGE = 1028;
const OFF_NR_BADPAGES = 1032;
const OFF_UUID = 1036;
const OFF_LABEL = 1052;
const LABEL_BYTES = 16;
const SIGNATURE = 'SWAPSPACE2';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface SwapOptions {
  /** UUID text; random when omitted (as mkswap). */
  readonly uuid?: string;
  /** At most 16 bytes. */
  readonly label?: string;
}

/** The first page of a swap area of `sizeBytes` (the rest of the area is left as it is). */
export function encodeSwapSignature(sizeBytes: number, options: SwapOptions = {}): Uint8Array {
  const pages = Math.floor(sizeBytes / SWAP_PAGE_SIZE);
  if (!Number.isSafeInteger(sizeBytes) || pages < MIN_SWAP_PAGES) {
    throw new InvalidArgumentError(`Expected a swap area of at least ${MIN_SWAP_PAGES} pages (${MIN_SWAP_PAGES * SWAP_PAGE_SIZE} bytes), got \`${sizeBytes}\` bytes`);
  }
  if (pages - 1 > 0xffff_ffff) throw new InvalidArgumentError(`Expected a swap area of at most 16 TiB, got \`${sizeBytes}\` bytes`);
  const uuid = options.uuid ?? randomUUID();
  if (!UUID_RE.test(uuid)) throw new InvalidArgumentError(`Expected \`uuid\` to be a UUID like 0b1c2d3e-…, got \`${uuid}\``);
  const label = Buffer.from(options.label ?? '', 'utf8');
  if (label.length > LABEL_BYTES || label.includes(0)) throw new InvalidArgumentError(`Expected a swap label of at most ${LABEL_BYTES} bytes, got \`${options.label}\``);
  const page = new Uint8Array(SWAP_PAGE_SIZE);
  const view = new DataView(page.buffer);
  view.setUint32(OFF_VERSION, 1, true);
  view.setUint32(OFF_LAST_PAGE, pages - 1, true);
  view.setUint32(OFF_NR_BADPAGES, 0, true);
  page.set(Buffer.from(uuid.replace(/-/g, ''), 'hex'), OFF_UUID);
  page.set(label, OFF_LABEL);
  page.set(Buffer.from(SIGNATURE, 'latin1'), SWAP_PAGE_SIZE - SIGNATURE.length);
  return page;
}

/** True when `page` (the first 4 KiB of an area) carries a swap signature. */
export function hasSwapSignature(page: Uint8Array): boolean {
  return page.length >= SWAP_PAGE_SIZE && Buffer.from(page.subarray(SWAP_PAGE_SIZE - 10, SWAP_PAGE_SIZE)).toString('latin1').startsWith('SWAPSPACE');
}
