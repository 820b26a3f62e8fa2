import { execa } from 'execa';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TemplateManifest } from '../../src/template/index.js';
import { runInProcess } from '../helpers/cli.js';
import { commitSteps, leftovers, runCli } from '../helpers/crash.js';
import { debugfs, e2fsckCheck, makeDiskFromTree, SBIN_PATH, sha256File, writeDebianLikeTree } from '../helpers/debian-like.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The ext commands on qcow2 images qemu-img made (plain, `-c` compressed, an overlay with `-b`):
 * readers match the raw equivalent; writers leave a qcow2 that `qemu-img check` finds clean and
 * whose `qemu-img convert -O raw` host e2fsck passes and host debugfs reads; an overlay's backing
 * file is never written.
 */

let dir: string;
let raw: string;
let layout: { start: number; sectors: number };
let images: Record<'plain' | 'compressed' | 'overlay', string>;

/** The extra argv each image needs (an overlay's chain is trusted only with --format qcow2). */
const trust = (kind: string): string[] => (kind === 'overlay' ? ['--format', 'qcow2'] : []);

async function qemuClean(image: string): Promise<void> {
  const check = await execa('qemu-img', ['check', image], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
}

/** Partition 1 of the image's `qemu-img convert -O raw`, as a file host e2fsprogs can read. */
async function partitionOf(image: string): Promise<string> {
  const flat = `${image}.flat`;
  await execa('qemu-img', ['convert', '-O', 'raw', image, flat]);
  const part = `${image}.p1`;
  writeFileSync(part, readFileSync(flat).subarray(layout.start * 512, (layout.start + layout.sectors) * 512));
  return part;
}

async function ok(args: string[]): Promise<string> {
  const result = await runInProcess(args);
  expect(result.code, `${args.join(' ')}: ${result.stderr.split('\n').filter((l) => !l.startsWith('{"event"')).join('\n')}`).toBe(0);
  return result.stdout;
}

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  await requireTool('e2fsck', 'e2fsprogs');
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('qcow2-commands-');
  const tree = join(dir, 'root');
  await writeDebianLikeTree(tree);
  raw = join(dir, 'disk.raw');
  layout = await makeDiskFromTree(tree, raw, { type: 'ext4', fsMiB: 24 });
  images = { plain: join(dir, 'plain.qcow2'), compressed: join(dir, 'compressed.qcow2'), overlay: join(dir, 'overlay.qcow2') };
  await execa('qemu-img', ['convert', '-O', 'qcow2', raw, images.plain]);
  await execa('qemu-img', ['convert', '-c', '-O', 'qcow2', raw, images.compressed]);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', raw, '-F', 'raw', images.overlay]);
});

describe('fs, fsck and info read a qcow2 as its raw equivalent', () => {
  it('fs ls/cat/stat/get, info and fsck give the raw disk\'s answers for plain, compressed and overlay images', async () => {
    const reads = async (image: string, extra: string[]): Promise<unknown[]> => {
      const get = join(dir, `get-${Math.random().toString(36).slice(2)}`);
      await ok(['fs', 'get', image, '/etc', get, '-p', '1', ...extra]);
      const info = JSON.parse(await ok(['info', image, '-p', '1', '--json', ...extra])) as { fields: unknown };
      const fsck = await runInProcess(['fsck', image, '-p', '1', '--json', ...extra]);
      return [
        await ok(['fs', 'ls', image, '/etc', '-l', '-p', '1', ...extra]),
        await ok(['fs', 'cat', image, '/etc/network/interfaces', '-p', '1', ...extra]),
        await ok(['fs', 'stat', image, '/etc/hostname', '-p', '1', '--json', ...extra]),
        (await readdir(get)).sort(),
        readFileSync(join(get, 'hostname'), 'utf8'),
        info.fields,
        fsck.code,
        (JSON.parse(fsck.stdout) as { log: string }).log.replace(image, 'IMAGE'),
      ];
    };
    const expected = await reads(raw, []);
    expect(expected[6]).toBe(0);
    for (const [kind, image] of Object.entries(images)) {
      expect(await reads(image, trust(kind)), kind).toEqual(expected.map((v) => (typeof v === 'string' ? v.replace(raw, 'IMAGE') : v)));
    }
    const refused = await runInProcess(['fs', 'ls', images.overlay, '/', '-p', '1']);
    expect(refused.stderr).toMatch(/E_UNTRUSTED_BACKING/);
  });
});

describe('fs writes, fsck --fix and resize commit into a qcow2', () => {
  it('fs put/mkdir/rm land in the qcow2 (qemu-img check clean, host e2fsck clean, host debugfs sees them); an overlay never writes its backing file', async () => {
    const rawHash = await sha256File(raw);
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(5 * 1024 * 1024 + 123, 0x5a));
    const small = join(dir, 'motd');
    writeFileSync(small, 'hello from a qcow2\n');
    for (const [kind, pristine] of Object.entries(images)) {
      const image = join(dir, `w-${kind}.qcow2`);
      copyFileSync(pristine, image);
      const extra = trust(kind);
      await ok(['fs', 'put', image, small, '/etc/motd', '-p', '1', ...extra]);
      await ok(['fs', 'put', image, big, '/big.bin', '-p', '1', ...extra]);
      await ok(['fs', 'mkdir', image, '/srv/app', '--parents', '-p', '1', ...extra]);
      await ok(['fs', 'rm', image, '/etc/hostname', '-p', '1', ...extra]);
      await qemuClean(image);
      const part = await partitionOf(image);
      expect((await e2fsckCheck(part)).exitCode, kind).toBe(0);
      expect(await debugfs(part, 'cat /etc/motd')).toBe('hello from a qcow2\n');
      expect(await debugfs(part, 'ls -p /srv')).toMatch(/\/app\//);
      expect(await debugfs(part, 'ls -p /etc')).not.toMatch(/\/hostname\//);
      const dumped = join(dir, `big-${kind}`);
      await execa('debugfs', ['-R', `dump /big.bin ${dumped}`, part], { env: { PATH: SBIN_PATH } });
      expect(readFileSync(dumped).equals(readFileSync(big))).toBe(true);
    }
    expect(await sha256File(raw)).toBe(rawHash);
  });

  it('fsck --fix repairs a qcow2 bare filesystem in place and resize grows its virtual size and filesystem in one commit', async () => {
    const fs = join(dir, 'bare.raw');
    await execa('mke2fs', ['-q', '-F', '-t', 'ext4', fs, '16M'], { env: { PATH: SBIN_PATH } });
    await execa('debugfs', ['-w', '-R', 'ssv free_blocks_count 17', fs], { env: { PATH: SBIN_PATH } });
    const image = join(dir, 'bare.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', fs, image]);
    const fixed = await runInProcess(['fsck', image, '--fix']);
    expect(fixed.code, fixed.stderr).toBe(1);
    await qemuClean(image);
    expect((await e2fsckCheck(await (async () => {
      await execa('qemu-img', ['convert', '-O', 'raw', image, `${image}.raw`]);
      return `${image}.raw`;
    })())).exitCode).toBe(0);
    const resized = JSON.parse(await ok(['resize', image, '+8M', '--json'])) as { imageSize: number; blocksCount: number; oldBlocksCount: number };
    expect(resized.imageSize).toBe(24 * 1024 * 1024);
    expect(resized.blocksCount).toBeGreaterThan(resized.oldBlocksCount);
    await qemuClean(image);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', image])).stdout) as { 'virtual-size': number };
    expect(info['virtual-size']).toBe(24 * 1024 * 1024);
    await execa('qemu-img', ['convert', '-O', 'raw', image, `${image}.raw2`]);
    expect((await e2fsckCheck(`${image}.raw2`)).exitCode).toBe(0);
    expect((await execa('dumpe2fs', ['-h', `${image}.raw2`], { env: { PATH: SBIN_PATH } })).stdout).toMatch(new RegExp(`Block count:\\s+${resized.blocksCount}\\n`));
  });

  it('resize --partition grows a GPT qcow2 disk: virtual size, partition entry and filesystem, sfdisk and e2fsck clean', async () => {
    const tree = join(dir, 'root');
    const gpt = join(dir, 'gpt.raw');
    const gptLayout = await makeDiskFromTree(tree, gpt, { type: 'ext4', fsMiB: 16, label: 'gpt' });
    const image = join(dir, 'gpt.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', gpt, image]);
    const before = (await execa('qemu-img', ['info', '--output=json', image])).stdout;
    const size = (JSON.parse(before) as { 'virtual-size': number })['virtual-size'] + 8 * 1024 * 1024;
    await ok(['resize', image, '-p', '1', String(size)]);
    await qemuClean(image);
    const flat = join(dir, 'gpt-grown.raw');
    await execa('qemu-img', ['convert', '-O', 'raw', image, flat]);
    expect(readFileSync(flat).length).toBe(size);
    const table = JSON.parse((await execa('sfdisk', ['--json', flat], { env: { PATH: SBIN_PATH } })).stdout) as { partitiontable: { partitions: { start: number; size: number }[] } };
    const p1 = table.partitiontable.partitions[0]!;
    expect(p1.start).toBe(gptLayout.start);
    expect(p1.size).toBeGreaterThan(gptLayout.sectors);
    writeFileSync(`${flat}.p1`, readFileSync(flat).subarray(p1.start * 512, (p1.start + p1.size) * 512));
    expect((await e2fsckCheck(`${flat}.p1`)).exitCode).toBe(0);
  });

  it('a kill during a commit into a qcow2 leaves the old or the new image: recover, qemu-img check clean, host e2fsck clean', async () => {
    const motd = join(dir, 'kill-motd');
    writeFileSync(motd, 'killed?\n');
    const work = join(dir, 'kill.qcow2');
    const args = (image: string): string[] => ['fs', 'put', image, motd, '/etc/motd', '-p', '1'];
    copyFileSync(images.plain, work);
    const steps = await commitSteps(args(work), join(dir, 'steps.log'));
    expect(steps.length).toBeGreaterThan(2);
    // One step per phase (record, record-durable, grow, write, written): the budget of this file.
    const phases = new Map<string, number[]>();
    for (const s of steps) phases.set(s.phase, [...(phases.get(s.phase) ?? []), s.n]);
    const picked = [...phases.values()].map((list) => list[Math.floor(list.length / 2)]!);
    expect(picked.length).toBeGreaterThanOrEqual(3);
    for (const step of picked) {
      copyFileSync(images.plain, work);
      const run = await runCli(args(work), { DISKWRIGHT_TEST_FAULT: `${step}:kill` });
      expect(run.killed, `step ${step}: ${run.stderr}`).toBe(true);
      const recover = await runCli(['recover', work]);
      expect(recover.code, recover.stderr).toBe(0);
      expect(leftovers(work)).toEqual([]);
      await qemuClean(work);
      const part = await partitionOf(work);
      expect((await e2fsckCheck(part)).exitCode, `step ${step}`).toBe(0);
      expect(['', 'killed?\n'], `step ${step}`).toContain(await debugfs(part, 'cat /etc/motd'));
    }
  });
});

describe('kernel and template make take a qcow2 disk', () => {
  it('copy the same kernel and make the same template as from the raw disk (the template stays raw)', async () => {
    const make = async (disk: string, name: string): Promise<{ manifest: TemplateManifest; kernel: Buffer; template: string }> => {
      const kernels = join(dir, `kernels-${name}`);
      const kernel = JSON.parse(await ok(['kernel', disk, '-p', '1', '-o', kernels, '--json'])) as { kernel: string };
      const template = join(dir, `tmpl-${name}`);
      const manifest = JSON.parse(await ok(['template', 'make', disk, '-p', '1', '-o', template, '--kernel-dir', `${kernels}-tmpl`, '--json'])) as TemplateManifest;
      return { manifest, kernel: readFileSync(kernel.kernel), template };
    };
    const fromRaw = await make(raw, 'raw');
    const fromQcow2 = await make(images.compressed, 'qcow2');
    expect(fromQcow2.kernel.equals(fromRaw.kernel)).toBe(true);
    expect(fromQcow2.manifest.files).toEqual(fromRaw.manifest.files);
    expect(fromQcow2.manifest.operations).toEqual(fromRaw.manifest.operations);
    expect(fromQcow2.manifest.filesystem).toEqual(fromRaw.manifest.filesystem);
    expect(readFileSync(fromQcow2.template).subarray(0, 4).toString('latin1')).not.toBe('QFI\xfb');
    expect((await e2fsckCheck(fromQcow2.template)).exitCode).toBe(0);
    for (const file of ['/etc/hostname', '/etc/network/interfaces', '/etc/fstab', '/etc/hosts']) {
      expect(await debugfs(fromQcow2.template, `cat ${file}`), file).toBe(await debugfs(fromRaw.template, `cat ${file}`));
    }
  });

  it('-O qcow2 writes the template as a qcow2 (qemu-img check clean) holding the same filesystem as the raw template, and instances are made from it', async () => {
    const template = join(dir, 'tmpl-out.qcow2');
    const manifest = JSON.parse(await ok(['template', 'make', images.plain, '-p', '1', '-o', template, '-O', 'qcow2', '--kernel-dir', join(dir, 'kernels-out'), '--json'])) as TemplateManifest;
    const fromRaw = JSON.parse(readFileSync(`${join(dir, 'tmpl-raw')}.diskwright.json`, 'utf8')) as TemplateManifest;
    expect(manifest.files).toEqual(fromRaw.files);
    expect(manifest).toMatchObject({ output: template, ...JSON.parse(readFileSync(`${template}.diskwright.json`, 'utf8')) });
    await qemuClean(template);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', template])).stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': readFileSync(join(dir, 'tmpl-raw')).length });
    expect(info['backing-filename']).toBeUndefined();
    expect(JSON.parse(await ok(['info', template, '--json']))).toMatchObject({ imageInfo: { format: 'qcow2', 'format-source': 'recorded' }, kind: 'ext4' });
    const flat = `${template}.raw`;
    await execa('qemu-img', ['convert', '-O', 'raw', template, flat]);
    expect((await e2fsckCheck(flat)).exitCode).toBe(0);
    for (const file of ['/etc/hostname', '/etc/network/interfaces', '/etc/fstab', '/etc/hosts']) {
      expect(await debugfs(flat, `cat ${file}`), file).toBe(await debugfs(join(dir, 'tmpl-raw'), `cat ${file}`));
    }
    // Free space takes no clusters: the qcow2 is not larger than the raw template's allocation.
    expect(statSync(template).size).toBeLessThanOrEqual(statSync(join(dir, 'tmpl-raw')).blocks * 512 + 1024 * 1024);
    expect((await readdir(dir)).filter((name) => name.includes('.diskwright-'))).toEqual([]);

    const hash = await sha256File(template);
    const instances = join(dir, 'out-images');
    mkdirSync(instances);
    const made = JSON.parse(await ok(['instance', 'create', '192.168.1.198', 'thin2', '--template', template, '--images-dir', instances, '--disk', '64M', '--format', 'qcow2', '--disk-only', '--json'])) as { disk: string };
    await qemuClean(made.disk);
    await execa('qemu-img', ['convert', '-O', 'raw', made.disk, `${made.disk}.raw`]);
    expect((await e2fsckCheck(`${made.disk}.raw`)).exitCode).toBe(0);
    expect(await debugfs(`${made.disk}.raw`, 'cat /etc/hostname')).toBe('thin2.linux.bogus\n');
    expect(await sha256File(template)).toBe(hash);
  });

  it('a thin instance with --fs-uuid new gets its own UUID in the qcow2 overlay (tune2fs through the block layer)', async () => {
    const images = join(dir, 'thin-images');
    mkdirSync(images);
    const made = JSON.parse(await ok(['instance', 'create', '192.168.1.197', 'thin1', '--template', join(dir, 'tmpl-qcow2'), '--images-dir', images, '--disk', '64M', '--format', 'qcow2', '--fs-uuid', 'new', '--disk-only', '--json'])) as { disk: string };
    await qemuClean(made.disk);
    await execa('qemu-img', ['convert', '-O', 'raw', made.disk, `${made.disk}.raw`]);
    expect((await e2fsckCheck(`${made.disk}.raw`)).exitCode).toBe(0);
    const uuid = (image: string): Promise<string> => execa('dumpe2fs', ['-h', image], { env: { PATH: SBIN_PATH } }).then((r) => /Filesystem UUID:\s+(\S+)/.exec(r.stdout)![1]!);
    expect(await uuid(`${made.disk}.raw`)).not.toBe(await uuid(join(dir, 'tmpl-qcow2')));
  });
});
