import { TruncatedError } from '../errors.js';

/**
 * Bounds-checked little-endian reads over a byte array. Every read names what it was reading so
 * a truncated input yields an error that says which structure was cut short.
 */
export function requireBytes(bytes: Uint8Array, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > bytes.length) {
    throw new TruncatedError(`${what}: need ${length} bytes at offset ${offset}, have ${Math.max(0, bytes.length - offset)}`, {
      offset,
      expected: length,
      actual: Math.max(0, bytes.length - offset),
    });
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function u8(bytes: Uint8Array, offset: number, what = 'u8'): number {
  requireBytes(bytes, offset, 1, what);
  return bytes[offset]!;
}

export function u16le(bytes: Uint8Array, offset: number, what = 'u16'): number {
  requireBytes(bytes, offset, 2, what);
  return view(bytes).getUint16(offset, true);
}

export function u32le(bytes: Uint8Array, offset: number, what = 'u32'): number {
  requireBytes(bytes, offset, 4, what);
  return view(bytes).getUint32(offset, true);
}

export function u64le(bytes: Uint8Array, offset: number, what = 'u64'): bigint {
  requireBytes(bytes, offset, 8, what);
  return view(bytes).getBigUint64(offset, true);
}

export function writeU16le(bytes: Uint8Array, offset: number, value: number): void {
  requireBytes(bytes, offset, 2, 'write u16');
  view(bytes).setUint16(offset, value, true);
}

export function writeU32le(bytes: Uint8Array, offset: number, value: number): void {
  requireBytes(bytes, offset, 4, 'write u32');
  view(bytes).setUint32(offset, value >>> 0, true);
}

export function writeU64le(bytes: Uint8Array, offset: number, value: bigint): void {
  requireBytes(bytes, offset, 8, 'write u64');
  view(bytes).setBigUint64(offset, value, true);
}
