import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/disk/index.js';
import { checkFilesystem, dumpFilesystemHeader, growFilesystem, tuneFilesystem } from '../../src/e2fs/index.js';
import { runToolDirect, runToolOnImage } from '../../src/e2fs/in-place.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The WASM e2fsprogs tools on qcow2 images through the worker's disk factory (src/e2fs/disk-factory.ts):
 * read-only runs, overlay runs committed into the qcow2, and direct runs into a new thin overlay.
 * Oracles: host e2fsck/dumpe2fs on `qemu-img convert -O raw` of the result, `qemu-img check`.
 */

const sbin = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
let dir: string;
let raw: string;

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

async function asRaw(image: string): Promise<string> {
  const out = `${image}.raw`;
  await execa('qemu-img', ['convert', '-O', 'raw', image, out]);
  return out;
}

async function qemuClean(image: string): Promise<void> {
  const check = await execa('qemu-img', ['check', image], { reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
}

async function hostFsckClean(image: string): Promise<void> {
  const fsck = await execa('e2fsck', ['-fn', image], { reject: false, env: sbin });
  expect(fsck.exitCode, fsck.stdout + fsck.stderr).toBe(0);
}

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  await requireTool('mke2fs', 'e2fsprogs');
  dir = await tempDir('qcow2-e2fs-');
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'hostname'), 'base\n');
  raw = join(dir, 'fs.raw');
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-L', 'base', raw, '32M'], { env: { ...sbin, E2FSPROGS_FAKE_TIME: '1700000000' } });
});

describe('the e2fs tools take a qcow2 through the block layer', () => {
  it('e2fsck -n and dumpe2fs -h read a qemu-made qcow2 (plain and compressed) as they read its raw equivalent', async () => {
    const expectedCheck = await checkFilesystem(raw, { mode: 'check', fakeTime: 1700000000 });
    const expectedHeader = await dumpFilesystemHeader(raw);
    for (const extra of [[], ['-c']]) {
      const image = join(dir, `read${extra.join('')}.qcow2`);
      await execa('qemu-img', ['convert', ...extra, '-O', 'qcow2', raw, image]);
      const check = await checkFilesystem(image, { mode: 'check', fakeTime: 1700000000 });
      expect(check.exitCode).toBe(0);
      expect(check.output.replaceAll(image, 'IMG')).toBe(expectedCheck.output.replaceAll(raw, 'IMG'));
      expect(await dumpFilesystemHeader(image)).toEqual(expectedHeader);
    }
  });

  it('a probed qcow2 with a backing file is refused before any tool runs; --format qcow2 reads the chain', async () => {
    const overlay = join(dir, 'probed.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', raw, '-F', 'raw', overlay]);
    await expect(runToolOnImage('dumpe2fs', ['-h', overlay], overlay)).rejects.toMatchObject({ code: 'E_UNTRUSTED_BACKING' });
    const header = await dumpFilesystemHeader(overlay, { format: 'qcow2' });
    expect(header['Filesystem volume name']).toBe('base');
  });

  it('tune2fs on a qcow2 is committed into it: qemu-img check clean, host dumpe2fs sees the change', async () => {
    const image = join(dir, 'tune.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', raw, image]);
    await tuneFilesystem(image, { args: ['-L', 'tuned'] });
    await qemuClean(image);
    const out = await asRaw(image);
    await hostFsckClean(out);
    expect((await execa('dumpe2fs', ['-h', out], { env: sbin })).stdout).toMatch(/Filesystem volume name:\s+tuned/);
  });

  it('direct runs write a new thin overlay (grown qcow2, resize2fs, e2fsck -fy) and never its backing file', async () => {
    const before = sha(raw);
    const thin = join(dir, 'thin.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', raw, '-F', 'raw', thin]);
    const disk = openImage(thin, { format: 'qcow2', readOnly: false });
    disk.resize!(64 * 1024 * 1024);
    disk.close();
    const grown = await growFilesystem(thin, { direct: true, format: 'qcow2', fakeTime: 1700000000 });
    expect(grown.blocksCount).toBeGreaterThan(grown.oldBlocksCount);
    const tuned = await runToolDirect('tune2fs', ['-L', 'thin', thin], thin, { format: 'qcow2' });
    expect(tuned.exitCode, tuned.stderr).toBe(0);
    const fixed = await checkFilesystem(thin, { mode: 'fix', direct: true, format: 'qcow2', fakeTime: 1700000000 });
    expect(fixed.status).toBe('clean');
    expect(sha(raw)).toBe(before);
    await qemuClean(thin);
    const out = await asRaw(thin);
    await hostFsckClean(out);
    const header = (await execa('dumpe2fs', ['-h', out], { env: sbin })).stdout;
    expect(header).toMatch(/Filesystem volume name:\s+thin/);
    expect(header).toMatch(new RegExp(`Block count:\\s+${grown.blocksCount}\\n`));
  });
});
