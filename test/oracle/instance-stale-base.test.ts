/**
 * Stale shared grown layers (src/instance/grown-base.ts): a layer whose instances are gone — a
 * create killed after it listed itself, or instance disks deleted by hand — keeps its template
 * read-only and was invisible. `instance list --bases` shows it as stale and `--prune` removes
 * it; a layer another process holds (a create building over it, by any of the file's names) or
 * that instances use is kept. Oracles: qemu-img info of the chain, the template's mode and sha256.
 */
import { linkSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { liveDependents } from '../../src/disk/dependents.js';
import { createInstance, defaultSteps } from '../../src/instance/index.js';
import { holdLock } from '../helpers/lock-holder.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { fakeLibvirt, makeTemplate, sha256 } from './instance-helpers.js';

let root: string;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'e2fsck', 'debugfs']) await requireTool(tool, 'e2fsprogs');
  await requireTool('qemu-img', 'qemu-utils');
  root = await tempDir('diskwright-stale-base-');
  process.env.DISKWRIGHT_CACHE_DIR = join(root, 'cache');
});

async function create(template: string, dir: string, host: string): Promise<string> {
  const request = { ip: '192.168.1.197', host, template, imagesDir: dir, disk: '64M', format: 'qcow2' as const };
  return (await createInstance({ request, steps: defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner })).disk;
}

async function bases(dir: string, ...extra: string[]): Promise<{ path: string; state: string; instances: string[]; template: string | null; removed: boolean }[]> {
  const r = await runInProcess(['instance', 'list', '--bases', '--images-dir', dir, '--json', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('instance list --bases', () => {
  it('shows a layer whose instances are gone as stale, and --prune removes it and gives the template its mode back', async () => {
    const dir = join(root, 'images');
    await mkdir(dir);
    const { template } = await makeTemplate(join(root, 'tmpl'), { size: '32M' });
    const mode = statSync(template).mode & 0o777;
    const hash = await sha256(template);
    const web1 = await create(template, dir, 'web1');
    const base = JSON.parse((await execa('qemu-img', ['info', '--output=json', web1])).stdout)['backing-filename'] as string;

    expect(await bases(dir)).toEqual([expect.objectContaining({ path: base, state: 'in-use', instances: [web1], template, removed: false })]);
    const text = await runInProcess(['instance', 'list', '--bases', '--images-dir', dir]);
    expect(text.stdout).toMatch(/^in-use\s+1\s+64.0 MiB\s+\S+debian-tmpl-67108864-/m);
    // In use: --prune keeps it.
    expect(await bases(dir, '--prune')).toEqual([expect.objectContaining({ state: 'in-use', removed: false })]);

    // The instance disk goes without `instance destroy` (as after a create killed before its rename:
    // its entry stays listed, the layer stays read-only): the layer is stale, the template read-only.
    await rm(web1);
    expect(liveDependents(base)).toEqual([]);
    expect(statSync(template).mode & 0o222).toBe(0);
    const refused = await runInProcess(['fs', 'mkdir', template, '/new']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('E_TEMPLATE_IN_USE');
    expect(refused.stderr).toContain('instance list --bases');
    expect(await bases(dir)).toEqual([expect.objectContaining({ path: base, state: 'stale', instances: [] })]);

    // Held by another process under another name of the file (a create locks it as its temp file
    // before linking it into place): building, kept by --prune.
    const alias = join(dir, '.alias.tmp');
    linkSync(base, alias);
    const holder = await holdLock(alias, 'read');
    try {
      expect(await bases(dir, '--prune')).toEqual([expect.objectContaining({ path: base, state: 'building', removed: false })]);
    } finally {
      await holder.release();
      await rm(alias);
    }

    expect(await bases(dir, '--prune')).toEqual([expect.objectContaining({ path: base, state: 'stale', removed: true })]);
    expect(statSync(base, { throwIfNoEntry: false })).toBeUndefined();
    expect(await bases(dir)).toEqual([]);
    expect(liveDependents(template)).toEqual([]);
    expect(statSync(template).mode & 0o777).toBe(mode);
    expect(await sha256(template)).toBe(hash);
    // The template is writable by diskwright again, and a new thin instance makes a new layer.
    expect((await runInProcess(['fs', 'mkdir', template, '/new'])).code).toBe(0);
    await create(template, dir, 'web2');
    expect(await bases(dir)).toEqual([expect.objectContaining({ state: 'in-use' })]);
  });

  it('says so when the images directory holds no layers, and refuses --prune without --bases', async () => {
    const r = await runInProcess(['instance', 'list', '--bases', '--images-dir', root]);
    expect(r.stdout).toBe(`no shared grown layers in ${root}\n`);
    const bad = await runInProcess(['instance', 'list', '--prune']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--bases');
  });
});
