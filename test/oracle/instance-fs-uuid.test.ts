import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { createInstance, defaultSteps } from '../../src/instance/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfsCat, dumpe2fsHeader, fakeLibvirt, hostFsck, makeTemplate, sha256, TOOL_ENV } from './instance-helpers.js';

let root: string;
let template: string;
let templateHash: string;
let templateUuid: string;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'e2fsck', 'dumpe2fs', 'debugfs']) await requireTool(tool, 'e2fsprogs');
  root = await tempDir('diskwright-fs-uuid-');
  ({ template } = await makeTemplate(join(root, 'tmpl'), { size: '32M' }));
  // The fstab `template make` leaves: the root entry names the placeholder the instance fills.
  const fstab = join(root, 'fstab');
  await writeFile(fstab, 'UUID=FSUUID-TMPL / ext3 errors=remount-ro 0 1\n');
  await execa('debugfs', ['-w', '-R', `write ${fstab} /etc/fstab`, template], { env: TOOL_ENV });
  templateUuid = (await dumpe2fsHeader(template))['Filesystem UUID']!;
  const manifestPath = `${template}.diskwright.json`;
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  manifest.filesystem.uuid = templateUuid;
  manifest.files.push({ path: '/etc/fstab', placeholders: ['FSUUID-TMPL'] });
  await writeFile(manifestPath, JSON.stringify(manifest));
  templateHash = await sha256(template);
});

let counter = 0;
async function build(fsUuid?: 'new' | 'keep'): Promise<string> {
  const dir = join(root, `images${counter++}`);
  await mkdir(dir);
  const request = { ip: '192.168.1.197', host: 'web1', template, imagesDir: dir, disk: '64M', ...(fsUuid ? { fsUuid } : {}) };
  const result = await createInstance({ request, steps: defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner });
  return result.disk!;
}

describe('instance create --fs-uuid (host dumpe2fs, debugfs and e2fsck as oracles)', () => {
  it('keeps the template filesystem UUID by default and fills fstab with it', async () => {
    const disk = await build();
    expect((await dumpe2fsHeader(disk))['Filesystem UUID']).toBe(templateUuid);
    expect(await debugfsCat(disk, '/etc/fstab')).toBe(`UUID=${templateUuid} / ext3 errors=remount-ro 0 1`);
  });

  it('gives each instance a fresh filesystem UUID that its fstab names, and never touches the template', async () => {
    const first = await build('new');
    const second = await build('new');
    const uuids = [];
    for (const disk of [first, second]) {
      const uuid = (await dumpe2fsHeader(disk))['Filesystem UUID']!;
      expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(uuid).not.toBe(templateUuid);
      expect(await debugfsCat(disk, '/etc/fstab')).toBe(`UUID=${uuid} / ext3 errors=remount-ro 0 1`);
      const fsck = await hostFsck(disk);
      expect(fsck.exitCode, fsck.output).toBe(0);
      uuids.push(uuid);
    }
    expect(uuids[0]).not.toBe(uuids[1]);
    expect(await sha256(template)).toBe(templateHash);
  });
});
