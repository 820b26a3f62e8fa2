import { InvalidArgumentError } from '../errors.js';

const UNITS: Record<string, bigint> = {
  '': 1n,
  B: 1n,
  S: 512n,
  K: 1n << 10n,
  M: 1n << 20n,
  G: 1n << 30n,
  T: 1n << 40n,
  P: 1n << 50n,
};

/**
 * Parses a size the way qemu-img and truncate users write it: `10G`, `512M`, `4096`, `2048s`
 * (512-byte sectors), `1.5G`, `10GiB`. Binary units. Returns bytes as a number (≤ 2^53).
 */
export function parseSize(text: string, option = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bBsSkKmMgGtTpP]?)(?:i?[bB])?\s*$/.exec(text);
  if (!match) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a size like 10G, 512M or 2048s, got \`${text}\``);
  }
  const unit = UNITS[match[2]!.toUpperCase()]!;
  const [whole, frac = ''] = match[1]!.split('.');
  const scale = 10n ** BigInt(frac.length);
  const bytes = (BigInt(whole! + frac) * unit) / scale;
  if ((BigInt(whole! + frac) * unit) % scale !== 0n) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a whole number of bytes, got \`${text}\``);
  }
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be at most 8 PiB, got \`${text}\``);
  }
  return Number(bytes);
}

/** Formats bytes for humans: 1.5 GiB, 512 MiB, 300 B. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}
