import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { isDiskwrightError } from '../../src/errors.js';
import { parseTemplateManifest } from '../../src/template/manifest.js';

const good = {
  version: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  source: { disk: '/d.img', partition: 1, start: 2048, sectors: 4096, sectorSize: 512 },
  filesystem: { kind: 'ext3', uuid: 'u', blockSize: 4096, blocksCount: 512 },
  files: [{ path: '/etc/hostname', placeholders: ['HOSTNAME-TMPL'] }],
  operations: [{ name: 'hostname', status: 'applied' }],
};

test.prop([fc.jsonValue()])('any JSON value is a manifest or an E_TEMPLATE error, never something else', (value) => {
  try {
    parseTemplateManifest(value);
  } catch (error) {
    expect(isDiskwrightError(error, 'E_TEMPLATE')).toBe(true);
  }
});

test.prop([fc.constantFrom('version', 'createdAt', 'source', 'filesystem', 'files', 'operations'), fc.jsonValue()])(
  'a manifest with one top-level field replaced by junk is refused unless the junk is valid there',
  (field, junk) => {
    const broken = { ...good, [field]: junk };
    let result: unknown;
    try {
      result = parseTemplateManifest(broken);
    } catch (error) {
      expect(isDiskwrightError(error, 'E_TEMPLATE')).toBe(true);
      return;
    }
    // Accepted: then the replaced field must have the documented shape.
    const parsed = result as typeof good;
    if (field === 'version') expect(parsed.version).toBe(1);
    if (field === 'files') expect(Array.isArray(parsed.files)).toBe(true);
    if (field === 'operations') expect(Array.isArray(parsed.operations)).toBe(true);
  },
);
