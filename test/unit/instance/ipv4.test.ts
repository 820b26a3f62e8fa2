import { describe, expect, it } from 'vitest';
import { formatIPv4, nearestNetmask, nonHostReason, parseIPv4, prefixToNetmask, reversePointerName, subnetOf, validateNetmask } from '../../../src/instance/index.js';
import { isDiskwrightError } from '../../../src/errors.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return isDiskwrightError(error) ? error.code : 'not a DiskwrightError';
  }
}

describe('parseIPv4', () => {
  it('parses a dotted quad into its 32-bit value', () => {
    expect(parseIPv4('192.168.1.197')).toEqual({ text: '192.168.1.197', value: 0xc0a801c5 });
    expect(parseIPv4('0.0.0.0').value).toBe(0);
    expect(parseIPv4('255.255.255.255').value).toBe(0xffffffff);
  });

  it.each([
    '192.168.01.1', '010.0.0.1', '0x7f.0.0.1', '127.1', '256.1.1.1', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4\n',
    '', '1..2.3', '1.2.3.-4', '１.2.3.4', 'a;rm -rf /', '--foo', '1.2.3.4,bus=ide', '2130706433',
  ])('rejects %j as an IPv4 address', (text) => {
    expect(codeOf(() => parseIPv4(text))).toBe('E_INVALID_ARGUMENT');
  });

  it('names the option and the bad value in the message', () => {
    expect(() => parseIPv4('1.2.3', 'gateway')).toThrow(/`gateway`.*"1\.2\.3"/);
  });

  it('formats values back to dotted quads', () => {
    expect(formatIPv4(0xc0a80100)).toBe('192.168.1.0');
  });
});

describe('validateNetmask', () => {
  it('accepts contiguous masks and returns the prefix length', () => {
    expect(validateNetmask('255.255.255.0').prefix).toBe(24);
    expect(validateNetmask('255.255.240.0').prefix).toBe(20);
    expect(validateNetmask('255.255.255.252').prefix).toBe(30);
    expect(validateNetmask('0.0.0.0').prefix).toBe(0);
    expect(validateNetmask('255.255.255.255').prefix).toBe(32);
  });

  it('rejects the article\'s 255.255.225.0 saying why and suggesting 255.255.255.0', () => {
    expect(() => validateNetmask('255.255.225.0')).toThrow(
      'netmask 255.255.225.0 is not contiguous: bits after the first 0 must be 0 (did you mean 255.255.255.0?)',
    );
  });

  it.each(['255.0.255.0', '0.255.255.255', '255.255.255.1', '128.0.0.1'])('rejects the non-contiguous mask %s', (mask) => {
    expect(codeOf(() => validateNetmask(mask))).toBe('E_INVALID_ARGUMENT');
  });

  it('suggests the closest contiguous mask for typos', () => {
    expect(nearestNetmask('255.255.225.0')).toBe('255.255.255.0');
    expect(nearestNetmask('255.255.0.255')).toMatch(/^255\.255\./);
    expect(prefixToNetmask(20)).toBe('255.255.240.0');
  });
});

describe('subnets and special addresses', () => {
  it('computes network and broadcast addresses', () => {
    const subnet = subnetOf(parseIPv4('192.168.1.197').value, 24);
    expect(formatIPv4(subnet.network)).toBe('192.168.1.0');
    expect(formatIPv4(subnet.broadcast)).toBe('192.168.1.255');
  });

  it('explains why loopback, multicast and 0/8 addresses are not host addresses', () => {
    expect(nonHostReason(parseIPv4('127.0.0.1').value)).toMatch(/loopback/);
    expect(nonHostReason(parseIPv4('224.0.0.1').value)).toMatch(/multicast/);
    expect(nonHostReason(parseIPv4('0.1.2.3').value)).toMatch(/this network/);
    expect(nonHostReason(parseIPv4('192.168.1.197').value)).toBeUndefined();
  });

  it('builds the in-addr.arpa name', () => {
    expect(reversePointerName(parseIPv4('192.168.1.197').value)).toBe('197.1.168.192.in-addr.arpa');
  });
});
