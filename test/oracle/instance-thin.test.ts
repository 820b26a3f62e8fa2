/**
 * Thin qcow2 instances against the real tools: qemu-img check/compare/convert/info, host e2fsck,
 * debugfs and dumpe2fs on the raw conversion, and the raw instance made from the same template.
 */
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractPartition } from '../../src/io/index.js';
import { backingIdentity } from '../../src/disk/backing-identity.js';
import { hasReadSet, prefetchTemplate, readSetPath } from '../../src/instance/prefetch.js';
import { createInstance, defaultSteps, destroyInstance } from '../../src/instance/index.js';
import type { PipelineSteps } from '../../src/instance/steps.js';
import { openImage } from '../../src/disk/index.js';
import { checkedRecordPath } from '../../src/instance/thin.js';
// @ts-expect-error — plain JS fixture script without type declarations
import { makeSeed } from '../../fixtures/make-seed.mjs';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfsCat, dumpe2fsGroupBlocks, dumpe2fsHeader, fakeLibvirt, hostFsck, INTERFACES, libvirtWithDisk, makeTemplate, sha256, TOOL_ENV } from './instance-helpers.js';

const RENDERED = ['/etc/hostname', '/etc/resolv.conf', '/etc/network/interfaces'];
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

let root: string;
let template: string;
let templateHash: string;
let counter = 0;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'e2fsck', 'dumpe2fs', 'debugfs']) await requireTool(tool, 'e2fsprogs');
  await requireTool('qemu-img', 'qemu-utils');
  await requireTool('sfdisk', 'fdisk');
  root = await tempDir('diskwright-thin-');
  // The templates' read sets (src/instance/prefetch.ts) go to this test's own cache.
  process.env.DISKWRIGHT_CACHE_DIR = join(root, 'cache');
  ({ template } = await makeTemplate(join(root, 'tmpl'), { size: '32M' }));
  templateHash = await sha256(template);
});

async function build(format: 'raw' | 'qcow2', extra: { standalone?: boolean; disk?: string; template?: string; host?: string; steps?: PipelineSteps } = {}): Promise<{ disk: string; dir: string }> {
  const dir = join(root, `images${counter++}`);
  await mkdir(dir);
  const request = { ip: '192.168.1.197', host: extra.host ?? 'web1', template: extra.template ?? template, imagesDir: dir, disk: extra.disk ?? '64M', format, ...(extra.standalone ? { standalone: true } : {}) };
  const result = await createInstance({ request, steps: extra.steps ?? defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner });
  return { disk: result.disk, dir };
}

async function qemuCheck(image: string): Promise<void> {
  const check = await execa('qemu-img', ['check', '-f', 'qcow2', image], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  expect(check.stdout).toMatch(/No errors were found on the image/);
}

async function toRaw(image: string): Promise<string> {
  const raw = `${image}.raw`;
  await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, raw]);
  return raw;
}

describe('instance create --format qcow2 makes a thin overlay over the template', () => {
  it('passes qemu-img check, converts to a raw disk that host e2fsck passes and debugfs shows rendered, equal to the raw instance', async () => {
    const thin = await build('qcow2');
    expect(thin.disk).toBe(join(thin.dir, 'web1-disk0.qcow2'));
    await qemuCheck(thin.disk);
    // instance → the shared grown layer of the template at 64M → the raw template.
    const [info, base] = JSON.parse((await execa('qemu-img', ['info', '--backing-chain', '--output=json', thin.disk])).stdout) as Record<string, unknown>[];
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * MiB, 'backing-filename-format': 'qcow2' });
    expect(String(info!['backing-filename'])).toMatch(new RegExp(`^${join(thin.dir, '.diskwright-bases')}/${basename(template)}-67108864-[0-9a-f]{16}\\.qcow2$`));
    expect(base).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * MiB, 'backing-filename': template, 'backing-filename-format': 'raw' });
    await qemuCheck(String(info!['backing-filename']));

    const raw = await toRaw(thin.disk);
    const fsck = await hostFsck(raw);
    expect(fsck.exitCode, fsck.output).toBe(0);
    expect(await debugfsCat(raw, '/etc/hostname')).toBe('web1.linux.bogus');
    expect(await debugfsCat(raw, '/etc/network/interfaces')).toBe(
      INTERFACES.replace('ADDRESS-TMPL', '192.168.1.197').replace('NETMASK-TMPL', '255.255.255.0').replace('GATEWAY-TMPL', '192.168.1.1').trimEnd(),
    );

    const plain = await build('raw');
    for (const path of RENDERED) expect(await debugfsCat(raw, path), path).toBe(await debugfsCat(plain.disk, path));
    const [a, b] = [await dumpe2fsHeader(raw), await dumpe2fsHeader(plain.disk)];
    expect(a['Block count']).toBe(b['Block count']);
    expect(Number(a['Block count']) * Number(a['Block size'])).toBe(64 * MiB);
    expect(a['Filesystem UUID']).toBe(b['Filesystem UUID']);
    expect(await sha256(template)).toBe(templateHash);
  });

  it('leaves the read set of its template after the first instance: the superblock, descriptors and bitmaps the final check read, which the next instance reads ahead', async () => {
    const { template: own } = await makeTemplate(join(root, `tmpl${counter++}`), { size: '32M' });
    expect(hasReadSet(backingIdentity(own))).toBe(false);
    const first = await build('qcow2', { template: own });
    await qemuCheck(first.disk);
    // The create made the template read-only (a new ctime) before it recorded its identity.
    const identity = backingIdentity(own);
    expect(statSync(own).mode & 0o222).toBe(0);
    expect(hasReadSet(identity)).toBe(true);
    const { ranges } = JSON.parse(readFileSync(readSetPath(identity), 'utf8')) as { ranges: number[] };
    const covered = (byte: number): boolean => ranges.some((_, i) => i % 2 === 0 && byte >= ranges[i]! && byte < ranges[i]! + ranges[i + 1]!);
    // dumpe2fs names where the metadata lies; e2fsck read every piece of it.
    const blocks = await dumpe2fsGroupBlocks(own);
    expect(blocks.length).toBeGreaterThan(2);
    for (const byte of [1024, ...blocks.map((b) => b.position)]) expect(covered(byte), `byte ${byte}`).toBe(true);
    expect(await prefetchTemplate(own, identity)).toBeGreaterThan(0);
    const second = await build('qcow2', { template: own });
    await qemuCheck(second.disk);
    expect((await hostFsck(await toRaw(second.disk))).exitCode).toBe(0);
  });

  it('keeps the clean template check in the cache, not on the template: the next thin instance skips it and the template inode is unchanged', async () => {
    const { template: own } = await makeTemplate(join(root, `tmpl${counter++}`), { size: '32M' });
    const checked: string[] = [];
    const steps: PipelineSteps = { ...defaultSteps, check: (image, options) => (checked.push(image), defaultSteps.check(image, options)) };
    const first = await build('qcow2', { template: own, steps });
    const ctime = statSync(own, { bigint: true }).ctimeNs;
    expect(JSON.parse(readFileSync(checkedRecordPath(own), 'utf8'))).toEqual(backingIdentity(own));
    const second = await build('qcow2', { template: own, steps });
    expect(checked.filter((image) => image === own)).toHaveLength(1);
    // Nothing diskwright did after the first instance touched the template's inode: both read.
    expect(statSync(own, { bigint: true }).ctimeNs).toBe(ctime);
    for (const disk of [first.disk, second.disk]) openImage(disk, { readOnly: true }).close();
  });

  it('--standalone writes a full qcow2 with no backing file that reads like the thin one', async () => {
    const thin = await build('qcow2', { host: 'web2' });
    const full = await build('qcow2', { host: 'web2', standalone: true });
    await qemuCheck(full.disk);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', full.disk])).stdout);
    expect(info['backing-filename']).toBeUndefined();
    // Same content except the random seed the customize step writes per instance: compare the files.
    const [a, b] = [await toRaw(thin.disk), await toRaw(full.disk)];
    for (const path of RENDERED) expect(await debugfsCat(b, path), path).toBe(await debugfsCat(a, path));
    expect((await hostFsck(b)).exitCode).toBe(0);
    expect(await sha256(template)).toBe(templateHash);
  });

  it('is refused by fsck, fs and info once its template changed, and instance destroy removes it but never the template', async () => {
    const tmplDir = join(root, `tmpl${counter++}`);
    const own = (await makeTemplate(tmplDir, { size: '32M' })).template;
    const thin = await build('qcow2', { template: own });
    const ok = await runInProcess(['fs', 'cat', thin.disk, '/etc/hostname']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('web1.linux.bogus');
    const later = new Date(Date.now() + 120_000);
    utimesSync(own, later, later);
    for (const args of [['fsck', thin.disk], ['fs', 'cat', thin.disk, '/etc/hostname'], ['info', thin.disk]]) {
      const refused = await runInProcess(args);
      expect(refused.code, `${args.join(' ')}: ${refused.stdout}`).not.toBe(0);
      expect(refused.stderr).toMatch(/changed since the overlay was made.*\[E_BACKING_CHANGED\]/);
    }
    const hash = await sha256(own);
    const destroyed = await destroyInstance('web1', { runner: libvirtWithDisk(thin.disk) });
    expect(destroyed.removedDisks).toEqual([thin.disk]);
    expect(statSync(thin.disk, { throwIfNoEntry: false })).toBeUndefined();
    expect(await sha256(own)).toBe(hash);
  });

  it('grows the 8 GiB seed template to 10 GiB in at most 8 MiB of overlay, qemu-img check clean and host e2fsck clean', async () => {
    const seed = join(root, 'seed.img');
    await makeSeed({ out: seed, dataSize: 16 * MiB, diskSize: 8 * GiB, force: true });
    const seedDir = join(root, 'seed-tmpl');
    await mkdir(seedDir);
    const big = join(seedDir, 'debian-tmpl');
    await extractPartition(seed, 1, big);
    // The article's placeholder files and a manifest, as `template make` leaves them (the seed has no /etc).
    const small = await makeTemplate(join(root, `tmpl${counter++}`), { size: '32M' });
    const commands = ['mkdir /etc', 'mkdir /etc/network'];
    for (const [path, text] of [['/etc/hostname', 'HOSTNAME-TMPL\n'], ['/etc/resolv.conf', 'nameserver NAMESERVER-TMPL\n'], ['/etc/network/interfaces', INTERFACES]] as const) {
      const host = join(seedDir, path.replaceAll('/', '_'));
      writeFileSync(host, text);
      commands.push(`write ${host} ${path}`);
    }
    writeFileSync(join(seedDir, 'edits.debugfs'), `${commands.join('\n')}\n`);
    await execa('debugfs', ['-w', '-f', join(seedDir, 'edits.debugfs'), big], { env: TOOL_ENV });
    await execa('cp', [`${small.template}.diskwright.json`, `${big}.diskwright.json`]);
    expect((await hostFsck(big)).exitCode).toBe(0);

    const thin = await build('qcow2', { template: big, disk: '10G' });
    const allocated = statSync(thin.disk).blocks * 512;
    process.stderr.write(`thin instance of the 8 GiB seed template grown to 10 GiB: ${(allocated / MiB).toFixed(2)} MiB allocated\n`);
    expect(allocated).toBeLessThanOrEqual(8 * MiB);
    await qemuCheck(thin.disk);
    const raw = await toRaw(thin.disk);
    const fsck = await hostFsck(raw);
    expect(fsck.exitCode, fsck.output).toBe(0);
    expect(Number((await dumpe2fsHeader(raw))['Block count']) * 4096).toBe(10 * GiB);
    expect(await debugfsCat(raw, '/etc/hostname')).toBe('web1.linux.bogus');
  }, 120_000);
});
