import { describe, expect, it } from 'vitest';
import { fqdnOf, validateDomain, validateHostname } from '../../../src/instance/index.js';

describe('validateHostname', () => {
  it('accepts RFC 1123 labels, digits first included', () => {
    expect(validateHostname('jgoulah')).toBe('jgoulah');
    expect(validateHostname('3com')).toBe('3com');
    expect(validateHostname('a-b')).toBe('a-b');
    expect(validateHostname('x'.repeat(63))).toHaveLength(63);
  });

  it.each(['', '-foo', '--foo', 'foo-', 'a;rm -rf /', 'x,bus=ide', 'a b', 'héllo', 'a_b', 'a.b', '../etc', 'x'.repeat(64), 'a\nb'])(
    'rejects %j',
    (name) => {
      expect(() => validateHostname(name)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    },
  );
});

describe('validateDomain', () => {
  it('accepts multi-label domains', () => {
    expect(validateDomain('linux.bogus')).toBe('linux.bogus');
    expect(validateDomain('a.b-c.example')).toBe('a.b-c.example');
  });

  it.each(['linux..bogus', '.linux', 'linux.', 'a.123', 'linux bogus', 'ex_ample.com', 'a,b.c'])('rejects %j', (domain) => {
    expect(() => validateDomain(domain)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it('limits the FQDN to 253 characters', () => {
    const label = 'a'.repeat(63);
    const domain = [label, label, label].join('.'); // 191
    expect(fqdnOf('h'.repeat(61), domain)).toHaveLength(253);
    expect(() => fqdnOf('h'.repeat(62), domain)).toThrow(/253/);
  });
});
