import { describe, expect, it } from 'vitest';
import { randomMac, validateMac } from '../../../src/instance/index.js';

describe('randomMac', () => {
  it('yields a locally administered unicast MAC in 52:54:00', () => {
    for (let i = 0; i < 50; i++) {
      const mac = randomMac();
      expect(mac).toMatch(/^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
      expect(Number.parseInt(mac.slice(0, 2), 16) & 0b11).toBe(0b10);
    }
  });

  it('skips MACs already taken (case-insensitively)', () => {
    const draws = [Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3), Uint8Array.of(0xab, 0xcd, 0xef)];
    let i = 0;
    const mac = randomMac(['52:54:00:01:02:03'.toUpperCase()], () => draws[i++]!);
    expect(mac).toBe('52:54:00:ab:cd:ef');
    expect(i).toBe(3);
  });

  it('gives up with an error instead of looping forever when every draw is taken', () => {
    expect(() => randomMac(['52:54:00:00:00:00'], () => new Uint8Array(3))).toThrow(/unused MAC/);
  });
});

describe('validateMac', () => {
  it('lower-cases a valid unicast MAC', () => {
    expect(validateMac('52:54:00:AA:BB:CC')).toBe('52:54:00:aa:bb:cc');
  });

  it.each(['01:00:5e:00:00:01', '52:54:00:aa:bb', '52-54-00-aa-bb-cc', '52:54:00:aa:bb:cc,x', '--mac'])('rejects %j', (mac) => {
    expect(() => validateMac(mac)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });
});
