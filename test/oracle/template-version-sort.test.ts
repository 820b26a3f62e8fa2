import { fc, test } from '@fast-check/vitest';
import { execa } from 'execa';
import { beforeAll, expect } from 'vitest';
import { compareVersions } from '../../src/template/version-sort.js';
import { requireTool } from '../helpers/oracle.js';

beforeAll(async () => {
  await requireTool('sort', 'coreutils');
});

const part = fc.oneof(
  fc.constantFrom('vmlinuz-', 'initrd.img-', '-amd64', '-rc', '~rc1', '.old', '.tar.gz', '-', '.', '~', '+', 'a', 'b'),
  fc.nat(120).map(String),
  fc.constantFrom('0', '00', '007', '10', '9'),
);
const name = fc.array(part, { minLength: 1, maxLength: 6 }).map((p) => p.join('')).filter((s) => !s.includes('\n'));

test.prop([fc.uniqueArray(name, { minLength: 2, maxLength: 12 })], { numRuns: 100 })('orders names exactly like GNU sort -V', async (names) => {
  const result = await execa('sort', ['-V'], { input: `${names.join('\n')}\n`, env: { LC_ALL: 'C' } });
  expect([...names].sort(compareVersions)).toEqual(result.stdout.split('\n'));
});

test('puts 6.1.0-13 after 6.1.0-9 and 6.10 after 6.9, as sort -V does', async () => {
  const names = ['vmlinuz-6.1.0-13-amd64', 'vmlinuz-6.1.0-9-amd64', 'vmlinuz-6.10.0-1-amd64', 'vmlinuz-6.9.0-1-amd64', 'vmlinuz-5.10.0-28-amd64'];
  expect([...names].sort(compareVersions)).toEqual([
    'vmlinuz-5.10.0-28-amd64',
    'vmlinuz-6.1.0-9-amd64',
    'vmlinuz-6.1.0-13-amd64',
    'vmlinuz-6.9.0-1-amd64',
    'vmlinuz-6.10.0-1-amd64',
  ]);
});
