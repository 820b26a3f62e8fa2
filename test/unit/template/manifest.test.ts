import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manifestPath, parseTemplateManifest, readTemplateManifest, type TemplateManifest } from '../../../src/template/manifest.js';
import { isDiskwrightError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

const good: TemplateManifest = {
  version: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  source: { disk: '/d.img', partition: 1, start: 2048, sectors: 4096, sectorSize: 512 },
  filesystem: { kind: 'ext3', uuid: 'u', blockSize: 4096, blocksCount: 512 },
  files: [{ path: '/etc/hostname', placeholders: ['HOSTNAME-TMPL'] }],
  operations: [{ name: 'hostname', status: 'applied', detail: 'x' }],
};

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isDiskwrightError(error) ? error.code : 'other';
  }
  return undefined;
}

describe('template manifest', () => {
  it('lives beside the template', () => {
    expect(manifestPath('/x/debian-tmpl')).toBe('/x/debian-tmpl.diskwright.json');
  });

  it('reads back a manifest as written', async () => {
    const dir = await tempDir();
    const template = join(dir, 't');
    await writeFile(manifestPath(template), JSON.stringify(good));
    await writeFile(template, '');
    expect(await readTemplateManifest(template)).toEqual(good);
  });

  it('says the template is missing when only its manifest is there', async () => {
    const dir = await tempDir();
    await writeFile(manifestPath(join(dir, 'gone')), JSON.stringify(good));
    await expect(readTemplateManifest(join(dir, 'gone'))).rejects.toThrow(/template .*gone not found \(only its manifest/);
  });

  it('reports a missing manifest as E_NOT_FOUND and junk as E_TEMPLATE', async () => {
    const dir = await tempDir();
    expect(await codeOf(readTemplateManifest(join(dir, 'none')))).toBe('E_NOT_FOUND');
    await writeFile(manifestPath(join(dir, 'junk')), '{"version":1,');
    expect(await codeOf(readTemplateManifest(join(dir, 'junk')))).toBe('E_TEMPLATE');
    await writeFile(manifestPath(join(dir, 'big')), ' '.repeat(1024 * 1024 + 1));
    expect(await codeOf(readTemplateManifest(join(dir, 'big')))).toBe('E_LIMIT');
  });

  it('rejects escaping paths, bad placeholder names and unknown versions', () => {
    expect(() => parseTemplateManifest({ ...good, files: [{ path: '/etc/../../x', placeholders: [] }] })).toThrow(/without \.\./);
    expect(() => parseTemplateManifest({ ...good, files: [{ path: 'etc/hostname', placeholders: [] }] })).toThrow(/absolute/);
    expect(() => parseTemplateManifest({ ...good, files: [{ path: '/etc/hostname', placeholders: ['$(reboot)'] }] })).toThrow(/NAME-TMPL/);
    expect(() => parseTemplateManifest({ ...good, version: 2 })).toThrow(/version/);
    expect(() => parseTemplateManifest({ ...good, operations: [{ name: 'x', status: 'done' }] })).toThrow(/status/);
  });
});
