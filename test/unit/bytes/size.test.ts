import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { formatBytes, parseSize } from '../../../src/bytes/size.js';
import { crc32 } from '../../../src/bytes/crc32.js';
import { DiskwrightError } from '../../../src/errors.js';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['10G', 10 * 2 ** 30],
    ['512M', 512 * 2 ** 20],
    ['2048s', 2048 * 512],
    ['1.5G', 1.5 * 2 ** 30],
    ['8GiB', 8 * 2 ** 30],
    ['1T', 2 ** 40],
  ])('parses %s', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'G', '-1G', '10X', '1.3', 'ten'])('rejects %j naming the option', (text) => {
    expect(() => parseSize(text, 'disk')).toThrow(/`disk`/);
  });

  test.prop([fc.integer({ min: 0, max: 2 ** 40 })])('round-trips plain byte counts', (n) => {
    expect(parseSize(String(n))).toBe(n);
  });

  test.prop([fc.string()])('any string gives a number or a DiskwrightError', (text) => {
    try {
      expect(Number.isSafeInteger(parseSize(text))).toBe(true);
    } catch (error) {
      expect(error).toBeInstanceOf(DiskwrightError);
    }
  });

  it('formats bytes for humans', () => {
    expect(formatBytes(300)).toBe('300 B');
    expect(formatBytes(1536 * 2 ** 20)).toBe('1.5 GiB');
  });
});

describe('crc32', () => {
  it('matches the IEEE check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});
