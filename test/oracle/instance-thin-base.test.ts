/**
 * The shared grown layer of thin instances (src/instance/grown-base.ts) against the real tools:
 * qemu-img info/check on the chain, host e2fsck on the raw conversion, the template's sha256.
 */
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { liveDependents } from '../../src/disk/dependents.js';
import { openResolved } from '../../src/disk/index.js';
import { createInstance, defaultSteps, destroyInstance } from '../../src/instance/index.js';
import { BASES_DIR } from '../../src/instance/grown-base.js';
import type { PipelineSteps } from '../../src/instance/steps.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfsCat, fakeLibvirt, hostFsck, libvirtWithDisk, makeTemplate, sha256, TOOL_ENV } from './instance-helpers.js';

const MiB = 1024 ** 2;
let root: string;
let counter = 0;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'e2fsck', 'debugfs', 'dumpe2fs']) await requireTool(tool, 'e2fsprogs');
  await requireTool('qemu-img', 'qemu-utils');
  root = await tempDir('diskwright-thin-base-');
  process.env.DISKWRIGHT_CACHE_DIR = join(root, 'cache');
});

/** `steps` with resize2fs counted. */
function countingSteps(): { steps: PipelineSteps; grows: () => number } {
  let grows = 0;
  return {
    steps: { ...defaultSteps, grow: (image, options) => ((grows += 1), defaultSteps.grow(image, options)) },
    grows: () => grows,
  };
}

async function create(template: string, dir: string, host: string, steps: PipelineSteps, disk = '64M'): Promise<string> {
  const request = { ip: '192.168.1.197', host, template, imagesDir: dir, disk, format: 'qcow2' as const };
  return (await createInstance({ request, steps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner })).disk;
}

async function chain(disk: string): Promise<{ filename: string; 'backing-filename'?: string; 'backing-filename-format'?: string }[]> {
  return JSON.parse((await execa('qemu-img', ['info', '--backing-chain', '--output=json', disk])).stdout);
}

async function rawClean(disk: string, host: string): Promise<void> {
  const raw = `${disk}.raw`;
  await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', disk, raw]);
  const fsck = await hostFsck(raw);
  expect(fsck.exitCode, fsck.output).toBe(0);
  expect(await debugfsCat(raw, '/etc/hostname')).toBe(`${host}.linux.bogus`);
  await execa('rm', ['-f', raw]);
}

describe('thin instances of one template at one size share one grown layer', () => {
  it('runs resize2fs once: the second instance overlays the first one\'s grown layer, both clean, the template unchanged', async () => {
    const dir = join(root, `images${counter++}`);
    await mkdir(dir);
    const { template } = await makeTemplate(join(root, `tmpl${counter++}`), { size: '32M' });
    const hash = await sha256(template);
    const { steps, grows } = countingSteps();
    const first = await create(template, dir, 'web1', steps);
    const second = await create(template, dir, 'web2', steps);
    expect(grows()).toBe(1);
    const [a, b] = [await chain(first), await chain(second)];
    expect(a).toHaveLength(3);
    expect(a[0]!['backing-filename']).toBe(b[0]!['backing-filename']);
    const base = a[0]!['backing-filename']!;
    expect(base.startsWith(join(dir, BASES_DIR) + '/')).toBe(true);
    expect(a[0]!['backing-filename-format']).toBe('qcow2');
    expect(a[1]).toMatchObject({ filename: base, 'backing-filename': template, 'backing-filename-format': 'raw' });
    for (const image of [first, second, base]) expect((await execa('qemu-img', ['check', '-q', image], { reject: false })).exitCode, image).toBe(0);
    await rawClean(first, 'web1');
    await rawClean(second, 'web2');
    expect(liveDependents(base)).toEqual([first, second]);
    expect(liveDependents(template)).toEqual([base]);
    expect(await sha256(template)).toBe(hash);
    // Another size is another layer.
    await create(template, dir, 'web3', steps, '96M');
    expect(grows()).toBe(2);
  });

  it('is removed again when the create that made it fails later, and the template gets its mode back', async () => {
    const dir = join(root, `images${counter++}`);
    await mkdir(dir);
    const { template } = await makeTemplate(join(root, `tmpl${counter++}`), { size: '32M' });
    const mode = statSync(template).mode & 0o777;
    const failing: PipelineSteps = { ...defaultSteps, render: async () => Promise.reject(new Error('render failed on purpose')) };
    await expect(create(template, dir, 'web1', failing)).rejects.toThrow(/step render failed/);
    expect(readdirSync(dir)).toEqual([]);
    expect(liveDependents(template)).toEqual([]);
    expect(statSync(template).mode & 0o777).toBe(mode);
  });

  it('damaged after it was made (an inode bitmap bit flipped), is refused by the next instance\'s final check: no disk is published', async () => {
    // The final e2fsck -fn is what the layer (never checked on its own) and the sessions (no open
    // check) rely on: without it this create would publish an instance over a broken filesystem.
    const dir = join(root, `images${counter++}`);
    await mkdir(dir);
    const { template } = await makeTemplate(join(root, `tmpl${counter++}`), { size: '32M' });
    const first = await create(template, dir, 'web1', defaultSteps);
    const base = (await chain(first))[0]!['backing-filename']!;
    const raw = join(dir, 'base.raw');
    await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', base, raw]);
    const header = (await execa('dumpe2fs', [raw], { env: TOOL_ENV })).stdout;
    await execa('rm', ['-f', raw]);
    const bitmap = Number(/Inode bitmap at (\d+)/.exec(header)![1]);
    const blockSize = Number(/Block size:\s+(\d+)/.exec(header)![1]);
    const perGroup = Number(/Inodes per group:\s+(\d+)/.exec(header)![1]);
    // The last inodes of group 0 are free: mark one used.
    const at = bitmap * blockSize + perGroup / 8 - 1;
    const mode = statSync(base).mode;
    chmodSync(base, mode | 0o200);
    const layer = openResolved(base, { format: 'qcow2', source: 'forced' }, { readOnly: false });
    const byte = Buffer.alloc(1);
    layer.read(byte, at);
    expect(byte[0]! & 0x40).toBe(0);
    layer.write(Buffer.of(byte[0]! | 0x40), at);
    layer.close();
    chmodSync(base, mode);
    await expect(create(template, dir, 'web2', defaultSteps)).rejects.toThrow(/step check failed: the final filesystem check of the finished disk is not clean/);
    expect(readdirSync(dir).sort()).toEqual([BASES_DIR, 'web1-disk0.qcow2']);
    expect(liveDependents(base)).toEqual([first]);
  });

  it('is refused to diskwright writers while instances use it; destroy keeps it for the others and removes it with the last', async () => {
    const dir = join(root, `images${counter++}`);
    await mkdir(dir);
    const { template } = await makeTemplate(join(root, `tmpl${counter++}`), { size: '32M' });
    const hash = await sha256(template);
    const first = await create(template, dir, 'web1', defaultSteps);
    const second = await create(template, dir, 'web2', defaultSteps);
    const base = (await chain(first))[0]!['backing-filename']!;
    expect(statSync(base).mode & 0o222).toBe(0);
    const fix = await runInProcess(['fsck', base, '--fix']);
    expect(fix.code).not.toBe(0);
    expect(fix.stderr).toMatch(/E_TEMPLATE_IN_USE|web1-disk0\.qcow2/);

    expect((await destroyInstance('web1', { runner: libvirtWithDisk(first) })).removedDisks).toEqual([first]);
    expect(statSync(base, { throwIfNoEntry: false })?.isFile()).toBe(true);
    await rawClean(second, 'web2');
    expect((await destroyInstance('web2', { runner: libvirtWithDisk(second) })).removedDisks).toEqual([second]);
    expect(statSync(base, { throwIfNoEntry: false })).toBeUndefined();
    expect(statSync(join(dir, BASES_DIR), { throwIfNoEntry: false })).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
    expect(liveDependents(template)).toEqual([]);
    expect(statSync(template).mode & 0o200).toBe(0o200);
    expect(await sha256(template)).toBe(hash);
  });
});
