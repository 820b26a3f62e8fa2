import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { normalizeImagePath } from '../../../src/ext/index.js';
import { isDiskwrightError } from '../../../src/errors.js';

describe('normalizeImagePath', () => {
  it.each([
    ['/', '/'],
    ['etc/hostname', '/etc/hostname'],
    ['//etc///network/', '/etc/network'],
    ['/etc/./ssh/../hostname', '/etc/hostname'],
    ['/a/b/../../c', '/c'],
    ['./x', '/x'],
  ])('normalizes %j to %j', (input, expected) => {
    expect(normalizeImagePath(input)).toBe(expected);
  });

  it.each(['..', '/..', '/../etc/passwd', 'a/../../b', '/a/b/../../../c'])('rejects %j, which climbs above the root', (input) => {
    expect(() => normalizeImagePath(input)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it('rejects empty paths, NUL bytes and names over 255 bytes', () => {
    for (const bad of ['', 'a\0b', `/${'x'.repeat(256)}`]) {
      expect(() => normalizeImagePath(bad)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    }
  });
});

const segment = fc.oneof(fc.constantFrom('.', '..', '', 'etc', 'a b', 'é'), fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !s.includes('/') && !s.includes('\0')));

test.prop([fc.array(segment, { maxLength: 12 }), fc.boolean()])('returns an absolute path without . or .. components, or a typed error', (parts, absolute) => {
  const input = `${absolute ? '/' : ''}${parts.join('/')}`;
  try {
    const out = normalizeImagePath(input);
    expect(out.startsWith('/')).toBe(true);
    expect(out.split('/').slice(1).filter((p) => p === '.' || p === '..' || (p === '' && out !== '/'))).toEqual([]);
    expect(normalizeImagePath(out)).toBe(out);
  } catch (error) {
    expect(isDiskwrightError(error, 'E_INVALID_ARGUMENT')).toBe(true);
  }
});
