import { BadSignatureError } from '../errors.js';
import { requireBytes } from '../bytes/index.js';

/** Length of a GUID on disk (UEFI 2.10 Appendix A: EFI_GUID). */
export const GUID_SIZE = 16;

const GUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function hex(bytes: Uint8Array, from: number, to: number, reverse: boolean): string {
  const parts: string[] = [];
  for (let i = from; i < to; i++) parts.push(bytes[i]!.toString(16).padStart(2, '0'));
  if (reverse) parts.reverse();
  return parts.join('');
}

/**
 * Formats the 16 GUID bytes at `offset` the way sfdisk prints them: the first three fields are
 * little-endian on disk (mixed-endian EFI_GUID), the last two big-endian; upper-case.
 */
export function formatGuid(bytes: Uint8Array, offset = 0): string {
  requireBytes(bytes, offset, GUID_SIZE, 'GUID');
  const o = offset;
  return [
    hex(bytes, o, o + 4, true),
    hex(bytes, o + 4, o + 6, true),
    hex(bytes, o + 6, o + 8, true),
    hex(bytes, o + 8, o + 10, false),
    hex(bytes, o + 10, o + 16, false),
  ]
    .join('-')
    .toUpperCase();
}

/** Encodes GUID text (`0FC63DAF-8483-4772-8E79-3D69D8477DE4`) into its 16 mixed-endian bytes. */
export function encodeGuid(text: string): Uint8Array {
  if (!GUID_TEXT.test(text)) {
    throw new BadSignatureError(`Expected a GUID like 0FC63DAF-8483-4772-8E79-3D69D8477DE4, got \`${text}\``);
  }
  const h = text.replace(/-/g, '');
  const raw = Uint8Array.from({ length: 16 }, (_v, i) => Number.parseInt(h.slice(i * 2, i * 2 + 2), 16));
  const out = new Uint8Array(GUID_SIZE);
  // Fields 1–3 are stored little-endian, fields 4–5 byte by byte.
  out.set(raw.subarray(0, 4).reverse(), 0);
  out.set(raw.subarray(4, 6).reverse(), 4);
  out.set(raw.subarray(6, 8).reverse(), 6);
  out.set(raw.subarray(8, 16), 8);
  return out;
}

/** True when the 16 bytes at `offset` are all zero (the "unused entry" type GUID). */
export function isZeroGuid(bytes: Uint8Array, offset = 0): boolean {
  requireBytes(bytes, offset, GUID_SIZE, 'GUID');
  for (let i = offset; i < offset + GUID_SIZE; i++) if (bytes[i] !== 0) return false;
  return true;
}
