/**
 * Instances from a qcow2 template (issue 10: qcow2 wherever an image is taken), against the real
 * tools: qemu-img check/info/convert, host e2fsck and debugfs on the raw conversion, and the
 * instance made from the same template as a raw file. Templates made by qemu-img (plain and
 * compressed) and by diskwright (`convert`, `create --backing`).
 */
import { copyFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { createInstance, defaultSteps, destroyInstance } from '../../src/instance/index.js';
import { hasReadSet } from '../../src/instance/prefetch.js';
import { backingIdentity } from '../../src/disk/backing-identity.js';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfsCat, dumpe2fsHeader, fakeLibvirt, hostFsck, libvirtWithDisk, makeTemplate, sha256 } from './instance-helpers.js';

const RENDERED = ['/etc/hostname', '/etc/resolv.conf', '/etc/network/interfaces'];
const MiB = 1024 ** 2;

let root: string;
let rawTemplate: string;
let counter = 0;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'e2fsck', 'dumpe2fs', 'debugfs']) await requireTool(tool, 'e2fsprogs');
  await requireTool('qemu-img', 'qemu-utils');
  root = await tempDir('diskwright-qtmpl-');
  // Read sets (src/instance/prefetch.ts) would go to this test's own cache.
  process.env.DISKWRIGHT_CACHE_DIR = join(root, 'cache');
  ({ template: rawTemplate } = await makeTemplate(join(root, 'tmpl'), { size: '32M', bigFileBytes: 3 * MiB }));
});

/** `template` as qemu-img (or diskwright) writes it in qcow2, with the raw template's manifest beside it. */
async function qcow2Template(name: string, make: (out: string) => Promise<unknown>): Promise<string> {
  const out = join(root, name);
  await make(out);
  copyFileSync(`${rawTemplate}.diskwright.json`, `${out}.diskwright.json`);
  return out;
}

async function build(template: string, format: 'raw' | 'qcow2', extra: { standalone?: boolean } = {}) {
  const dir = join(root, `images${counter++}`);
  await mkdir(dir);
  const libvirt = fakeLibvirt();
  const request = { ip: '192.168.1.197', host: 'web1', template, imagesDir: dir, disk: '64M', format, ...(extra.standalone ? { standalone: true } : {}) };
  const result = await createInstance({ request, steps: defaultSteps, runner: libvirt.runner });
  const install = libvirt.calls.find((c) => c.tool === 'virt-install' && c.argv.includes('--name'))!;
  return { disk: result.disk, dir, diskArg: install.argv[install.argv.indexOf('--disk') + 1]! };
}

async function qemuCheck(image: string): Promise<void> {
  const check = await execa('qemu-img', ['check', '-f', 'qcow2', image], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  expect(check.stdout).toMatch(/No errors were found on the image/);
}

async function qemuInfo(image: string): Promise<Record<string, unknown>> {
  return JSON.parse((await execa('qemu-img', ['info', '--output=json', image])).stdout);
}

async function toRaw(image: string): Promise<string> {
  const raw = `${image}.raw`;
  await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, raw]);
  return raw;
}

/** The rendered files and the grown size match the instance made from the raw template. */
async function expectLikeRawInstance(raw: string, reference: string): Promise<void> {
  const fsck = await hostFsck(raw);
  expect(fsck.exitCode, fsck.output).toBe(0);
  expect(await debugfsCat(raw, '/etc/hostname')).toBe('web1.linux.bogus');
  for (const path of RENDERED) expect(await debugfsCat(raw, path), path).toBe(await debugfsCat(reference, path));
  expect(await debugfsCat(raw, '/usr/blob')).toBe(await debugfsCat(rawTemplate, '/usr/blob'));
  const [a, b] = [await dumpe2fsHeader(raw), await dumpe2fsHeader(reference)];
  expect(Number(a['Block count']) * Number(a['Block size'])).toBe(64 * MiB);
  expect(a['Filesystem UUID']).toBe(b['Filesystem UUID']);
}

describe.each([
  ['made by qemu-img convert -O qcow2', 'qemu', (out: string) => execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', rawTemplate, out])],
  ['made by qemu-img convert -c (compressed clusters)', 'qemu-c', (out: string) => execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', rawTemplate, out])],
  ['made by diskwright convert -O qcow2', 'dw', async (out: string) => expect((await runInProcess(['convert', rawTemplate, out, '-O', 'qcow2'])).code).toBe(0)],
])('instance create from a qcow2 template %s', (_title, name, make) => {
  let template: string;
  let hash: string;
  let reference: string;

  beforeAll(async () => {
    template = await qcow2Template(`${name}.qcow2`, make);
    hash = await sha256(template);
    reference = (await build(rawTemplate, 'raw')).disk;
  });

  it('writes a raw instance disk that host e2fsck passes, sparse, equal to the instance of the raw template', async () => {
    const { disk, diskArg } = await build(template, 'raw');
    expect(diskArg).not.toMatch(/format=qcow2/);
    expect(statSync(disk).size).toBe(64 * MiB);
    expect(statSync(disk).blocks * 512).toBeLessThan(32 * MiB);
    await expectLikeRawInstance(disk, reference);
    expect(await sha256(template)).toBe(hash);
  });

  it('--format qcow2 writes a thin overlay with the qcow2 template as its qcow2 backing file, qemu-img check clean', async () => {
    const { disk, diskArg } = await build(template, 'qcow2');
    expect(diskArg).toMatch(/\.qcow2,format=qcow2,/);
    await qemuCheck(disk);
    // instance → the template's shared grown layer at 64M (src/instance/grown-base.ts) → the qcow2 template.
    const [top, layer] = JSON.parse((await execa('qemu-img', ['info', '--backing-chain', '--output=json', disk])).stdout) as Record<string, unknown>[];
    expect(top).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * MiB, 'backing-filename-format': 'qcow2' });
    expect(String(top!['backing-filename'])).toContain('/.diskwright-bases/');
    expect(layer).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * MiB, 'backing-filename': template, 'backing-filename-format': 'qcow2' });
    expect(statSync(disk).blocks * 512).toBeLessThan(4 * MiB);
    await expectLikeRawInstance(await toRaw(disk), reference);
    expect(await sha256(template)).toBe(hash);
    // The final check's reads are guest offsets, not the qcow2 file's: no read-ahead set is kept.
    expect(hasReadSet(backingIdentity(template))).toBe(false);
  });

  it('--standalone writes a full qcow2 with no backing file, qemu-img check clean', async () => {
    const { disk, diskArg } = await build(template, 'qcow2', { standalone: true });
    expect(diskArg).toMatch(/format=qcow2/);
    await qemuCheck(disk);
    expect((await qemuInfo(disk))['backing-filename']).toBeUndefined();
    await expectLikeRawInstance(await toRaw(disk), reference);
    expect(await sha256(template)).toBe(hash);
  });
});

describe('a qcow2 template with a backing file', () => {
  it('is refused with a hint when diskwright did not record it, before anything is written', async () => {
    const template = await qcow2Template('foreign-overlay.qcow2', (out) => execa('qemu-img', ['create', '-f', 'qcow2', '-b', rawTemplate, '-F', 'raw', out]));
    const dir = join(root, `images${counter++}`);
    await mkdir(dir);
    const result = await runInProcess(['instance', 'create', '192.168.1.197', 'web1', '--template', template, '--images-dir', dir, '--disk', '64M', '--disk-only']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/backing file .*did not record.*\[E_UNTRUSTED_BACKING\]/);
    expect(result.stderr).toMatch(/diskwright convert --format qcow2/);
    expect(await execa('ls', ['-A', dir]).then((r) => r.stdout)).toBe('');
  });

  it('is followed by raw and --standalone instances when diskwright made it (create --backing); a thin instance over it is refused', async () => {
    const hash = await sha256(rawTemplate);
    const template = await qcow2Template('dw-overlay.qcow2', async (out) =>
      expect((await runInProcess(['create', out, '--format', 'qcow2', '--backing', rawTemplate, '--backing-format', 'raw'])).code).toBe(0),
    );
    const reference = (await build(rawTemplate, 'raw')).disk;
    await expectLikeRawInstance((await build(template, 'raw')).disk, reference);
    const full = await build(template, 'qcow2', { standalone: true });
    await qemuCheck(full.disk);
    expect((await qemuInfo(full.disk))['backing-filename']).toBeUndefined();
    await expectLikeRawInstance(await toRaw(full.disk), reference);

    const dir = join(root, `images${counter++}`);
    await mkdir(dir);
    const thin = await runInProcess(['instance', 'create', '192.168.1.197', 'web1', '--template', template, '--images-dir', dir, '--disk', '64M', '--disk-only', '--format', 'qcow2']);
    expect(thin.code).not.toBe(0);
    expect(thin.stderr).toMatch(/has a backing file .* a thin instance could not detect.*\[E_TEMPLATE\]/);
    expect(await execa('ls', ['-A', dir]).then((r) => r.stdout)).toBe('');
    expect(await sha256(rawTemplate)).toBe(hash);
  });
});

describe('a qcow2 template that a thin instance depends on', () => {
  it('is protected as a raw one is: writers refuse it, a changed one makes the overlay refused, destroy keeps it', async () => {
    const template = await qcow2Template('protected.qcow2', (out) => execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', rawTemplate, out]));
    const { disk } = await build(template, 'qcow2');
    const hash = await sha256(template);
    writeFileSync(join(root, 'x'), 'x\n');
    for (const args of [['fsck', template, '--fix'], ['fs', 'put', template, join(root, 'x'), '/etc/x']]) {
      const result = await runInProcess(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).not.toBe(0);
      expect(result.stderr).toMatch(/refusing to (write|replace) .*protected\.qcow2: thin instance .* use it.*\[E_TEMPLATE_IN_USE\]/);
    }
    expect(await sha256(template)).toBe(hash);
    const ok = await runInProcess(['fs', 'cat', disk, '/etc/hostname']);
    expect(ok.stdout.trim(), ok.stderr).toBe('web1.linux.bogus');

    const later = new Date(Date.now() + 120_000);
    utimesSync(template, later, later);
    const refused = await runInProcess(['fs', 'cat', disk, '/etc/hostname']);
    expect(refused.stderr).toMatch(/changed since the overlay was made.*\[E_BACKING_CHANGED\]/);
    const destroyed = await destroyInstance('web1', { runner: libvirtWithDisk(disk) });
    expect(destroyed.removedDisks).toEqual([disk]);
    expect(await sha256(template)).toBe(hash);
  });
});
