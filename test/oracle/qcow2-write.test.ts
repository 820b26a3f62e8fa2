import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createQcow2, openQcow2Chain, Qcow2Disk } from '../../src/disk/qcow2/index.js';
import { requireTool } from '../helpers/oracle.js';
import { pattern, readAll, writeMixedRaw } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;

/** qemu-img check is clean (no leaks, no corruptions) and the guest view equals `model`. */
export async function expectCleanAndEqual(image: string, model: Uint8Array, modelPath: string): Promise<void> {
  const check = await execa('qemu-img', ['check', '--output=json', image], { reject: false });
  const report = JSON.parse(check.stdout) as { leaks?: number; corruptions?: number; 'check-errors'?: number };
  expect({ exit: check.exitCode, leaks: report.leaks ?? 0, corruptions: report.corruptions ?? 0 }).toEqual({ exit: 0, leaks: 0, corruptions: 0 });
  writeFileSync(modelPath, model);
  const compare = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', image, modelPath], { reject: false });
  expect(compare.stdout + compare.stderr).toContain('Images are identical');
  expect(compare.exitCode).toBe(0);
}

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir('qcow2-write-');
});

describe('qcow2 images diskwright writes pass qemu-img check and compare', () => {
  for (const clusterSize of [512, 65536, 2 * 1024 * 1024]) {
    for (const compat of ['1.1', '0.10'] as const) {
      it(`writes, discards and grows a compat ${compat} image with ${clusterSize}-byte clusters`, async () => {
        const image = join(dir, `w${clusterSize}-${compat}.qcow2`);
        const size = 3 * 1024 * 1024;
        createQcow2(image, { size, clusterSize, compat });
        const model = new Uint8Array(6 * 1024 * 1024 + 4096);
        const disk = Qcow2Disk.open(image, { readOnly: false });
        const put = (bytes: Uint8Array, at: number): void => {
          disk.write(bytes, at);
          model.set(bytes, at);
        };
        put(pattern(200_000, 5), 1000);
        put(pattern(777, 6), 65_000);
        put(pattern(2 * 1024 * 1024, 7), 512 * 1024);
        disk.discard(600_000, 700_000);
        model.fill(0, 600_000, 1_300_000);
        disk.resize(6 * 1024 * 1024 + 4096);
        put(pattern(9_000, 8), 6 * 1024 * 1024 - 4904);
        put(pattern(300, 9), 100);
        expect(Buffer.compare(readAll(disk), model)).toBe(0);
        disk.close();
        await expectCleanAndEqual(image, model, `${image}.raw`);
      });
    }
  }

  it('grows the refcount table and the L1 table past their first clusters (512-byte clusters, 40 MiB)', async () => {
    const image = join(dir, 'grow.qcow2');
    createQcow2(image, { size: 1024 * 1024, clusterSize: 512 });
    const disk = Qcow2Disk.open(image, { readOnly: false });
    disk.resize(40 * 1024 * 1024);
    const model = new Uint8Array(40 * 1024 * 1024);
    const data = pattern(40 * 1024 * 1024, 11);
    for (let at = 0; at < data.length; at += 3 * 1024 * 1024) {
      const piece = data.subarray(at, Math.min(data.length, at + 1024 * 1024 + 17));
      disk.write(piece, at);
      model.set(piece, at);
    }
    disk.close();
    await expectCleanAndEqual(image, model, `${image}.raw`);
  });

  it('copies on write from a backing chain and leaves the backing files untouched', async () => {
    const base = join(dir, 'cow-base.raw');
    const baseBytes = writeMixedRaw(base, 4 * 1024 * 1024);
    const mid = join(dir, 'cow-mid.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'raw', mid]);
    await execa('qemu-io', ['-c', 'write -P 0x5a 100000 5000', mid]);
    const midBefore = readFileSync(mid);
    const top = join(dir, 'cow-top.qcow2');
    createQcow2(top, { size: 4 * 1024 * 1024, backingFile: 'cow-mid.qcow2', backingFormat: 'qcow2' });
    const disk = openQcow2Chain(top, { readOnly: false });
    const model = readAll(disk);
    expect(Buffer.compare(model.subarray(0, 90_000), baseBytes.subarray(0, 90_000))).toBe(0);
    const put = (bytes: Uint8Array, at: number): void => {
      disk.write(bytes, at);
      model.set(bytes, at);
    };
    put(pattern(100, 12), 101_000); // inside the mid layer's data
    put(pattern(5000, 13), 63_000); // across a cluster edge, over base data
    disk.discard(1_048_576, 131_072); // zero clusters hide the backing
    model.fill(0, 1_048_576, 1_048_576 + 131_072);
    disk.discard(2_000_000, 1000); // partial: zeros are written
    model.fill(0, 2_000_000, 2_001_000);
    disk.close();
    expect(Buffer.compare(readFileSync(mid), midBefore)).toBe(0);
    await expectCleanAndEqual(top, model, `${top}.raw`);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', top])).stdout) as Record<string, unknown>;
    expect(info['backing-filename']).toBe('cow-mid.qcow2');
    expect(info['backing-filename-format']).toBe('qcow2');
  });

  it('writes into qemu-made compressed and lazy-refcount images without leaks', async () => {
    const raw = join(dir, 'src.raw');
    writeMixedRaw(raw, 4 * 1024 * 1024);
    const compressed = join(dir, 'zw.qcow2');
    await execa('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', 'lazy_refcounts=on', raw, compressed]);
    const disk = Qcow2Disk.open(compressed, { readOnly: false });
    const model = readAll(disk);
    disk.write(pattern(3000, 14), 1_100_500); // inside a compressed cluster
    model.set(pattern(3000, 14), 1_100_500);
    disk.write(pattern(65536, 15), 1_179_648); // a whole compressed cluster replaced
    model.set(pattern(65536, 15), 1_179_648);
    disk.discard(0, 65536);
    model.fill(0, 0, 65536);
    disk.close();
    await expectCleanAndEqual(compressed, model, `${compressed}.raw`);
  });

  it('clears unknown autoclear bits on disk before its first write changes the image', async () => {
    const image = join(dir, 'autoclear.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', image, '4M']);
    const bytes = readFileSync(image);
    bytes[88] = bytes[88]! | 0x80; // autoclear_features bit 63: unknown to diskwright and to this qemu-img
    writeFileSync(image, bytes);
    const autoclear = (): bigint => readFileSync(image).readBigUInt64BE(88);
    const disk = Qcow2Disk.open(image, { readOnly: false });
    expect(autoclear()).toBe(1n << 63n); // opening alone changes nothing
    disk.write(pattern(70_000, 16), 5_000);
    expect(autoclear()).toBe(0n); // before any flush: a crash now must not leave the bit set over new data
    disk.close();
    expect(autoclear()).toBe(0n);
    const model = new Uint8Array(4 * 1024 * 1024);
    model.set(pattern(70_000, 16), 5_000);
    await expectCleanAndEqual(image, model, `${image}.raw`);
  });

  it('clears the bitmaps bit too, leaving the stale bitmap clusters as leaks qemu-img check -r repairs', async () => {
    const image = join(dir, 'bitmap.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', image, '4M']);
    await execa('qemu-img', ['bitmap', '--add', image, 'b0']); // bit 0 with a real bitmaps extension
    expect(readFileSync(image).readBigUInt64BE(88)).toBe(1n);
    const disk = Qcow2Disk.open(image, { readOnly: false });
    disk.write(pattern(4096, 17), 0);
    expect(readFileSync(image).readBigUInt64BE(88)).toBe(0n);
    disk.close();
    // QEMU's design: bitmaps written by "a program lacking bitmap support" are ignored, their clusters leak.
    const check = await execa('qemu-img', ['check', '--output=json', image], { reject: false });
    const report = JSON.parse(check.stdout) as { leaks?: number; corruptions?: number };
    expect({ exit: check.exitCode, corruptions: report.corruptions ?? 0, leaks: report.leaks }).toEqual({ exit: 3, corruptions: 0, leaks: 2 });
    await execa('qemu-img', ['check', '-r', 'leaks', image]);
    const model = new Uint8Array(4 * 1024 * 1024);
    model.set(pattern(4096, 17), 0);
    await expectCleanAndEqual(image, model, `${image}.raw`);
  });

  it('refuses to write dirty, corrupt, snapshotted or extended-L2 images, with a hint', async () => {
    const image = join(dir, 'snap.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', image, '1M']);
    await execa('qemu-img', ['snapshot', '-c', 's1', image]);
    expect(() => Qcow2Disk.open(image, { readOnly: false })).toThrow(/internal snapshots/);
    const ext = join(dir, 'ext.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-o', 'extended_l2=on', ext, '1M']);
    expect(() => Qcow2Disk.open(ext, { readOnly: false })).toThrow(/extended L2/);
    const dirty = join(dir, 'dirty.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', dirty, '1M']);
    const bytes = readFileSync(dirty);
    bytes[79] = 1; // incompatible_features bit 0
    writeFileSync(dirty, bytes);
    expect(() => Qcow2Disk.open(dirty, { readOnly: false })).toThrow(/dirty/);
    bytes[79] = 2;
    writeFileSync(dirty, bytes);
    expect(() => Qcow2Disk.open(dirty, { readOnly: false })).toThrow(/corrupt/);
    expect(Qcow2Disk.open(dirty).facts().corrupt).toBe(true);
  });
});
