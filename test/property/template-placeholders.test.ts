import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { PLACEHOLDERS, findPlaceholders, netmaskToPrefix, renderPlaceholders } from '../../src/template/placeholders.js';

const value = fc.string({ unit: fc.constantFrom('a', '1', '.', '-', '$', '&', '\\', '/', ' ', 'A', 'T', 'M', 'P', 'L'), maxLength: 12 });
const values = fc.record(Object.fromEntries(PLACEHOLDERS.map((name) => [name, value])) as Record<(typeof PLACEHOLDERS)[number], fc.Arbitrary<string>>);
const piece = fc.oneof(fc.constantFrom(...PLACEHOLDERS, ' ', '\n', '/', 'x', '#', 'address '), fc.string({ maxLength: 5 }));
const text = fc.array(piece, { maxLength: 20 }).map((parts) => parts.join(''));

test.prop([text, values])('rendering with values that carry no token leaves no known placeholder', (input, vals) => {
  fc.pre(Object.values(vals).every((v) => findPlaceholders(` ${v} `).length === 0));
  const out = renderPlaceholders(input, vals);
  const left = findPlaceholders(out).filter((name) => (PLACEHOLDERS as readonly string[]).includes(name));
  expect(left).toEqual([]);
});

const literal = fc.string({ unit: fc.constantFrom(' ', '/', '\n', '.', '#', ':', '=', '$', '&', '-'), minLength: 1, maxLength: 4 });
const pieces = fc.array(fc.oneof(fc.constantFrom(...PLACEHOLDERS).map((name) => ({ name })), literal.map((lit) => ({ lit }))), { maxLength: 12 });

test.prop([pieces, values])('rendering equals substituting each placeholder piece of the text by its value', (parts, vals) => {
  const input = parts.map((p) => ('name' in p ? p.name : p.lit)).join('');
  const expected = parts.map((p) => ('name' in p ? vals[p.name] : p.lit)).join('');
  // Adjacent placeholders join into one longer word (e.g. `ADDRESS-TMPLHOSTNAME-TMPL`), which is not a token.
  const adjacent = parts.some((p, i) => 'name' in p && parts[i + 1] !== undefined && 'name' in parts[i + 1]!);
  fc.pre(!adjacent);
  expect(renderPlaceholders(input, vals)).toBe(expected);
});

test.prop([fc.integer({ min: 0, max: 32 })])('every prefix length round-trips through its dotted netmask', (prefix) => {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const mask = [24, 16, 8, 0].map((shift) => (bits >>> shift) & 255).join('.');
  expect(netmaskToPrefix(mask)).toBe(prefix);
});

test.prop([fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))])('a netmask is accepted exactly when its bits are contiguous', (octets) => {
  const bits = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  const inverted = ~bits >>> 0;
  const contiguous = (inverted & (inverted + 1)) === 0;
  expect(netmaskToPrefix(octets.join('.')) !== undefined).toBe(contiguous);
});
