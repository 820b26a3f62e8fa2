import { execa } from 'execa';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openQcow2Chain, Qcow2Disk } from '../../src/disk/qcow2/index.js';
import { requireTool } from '../helpers/oracle.js';
import { diskStates, qemuMapStates, qemuRaw, readAll, writeMixedRaw } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';

const SIZE = 4 * 1024 * 1024 + 3 * 512;
let dir: string;
let raw: string;

async function qemuIo(image: string, commands: string[], format = 'qcow2'): Promise<void> {
  await execa('qemu-io', ['-f', format, ...commands.flatMap((c) => ['-c', c]), image]);
}

/** Our reading of `image` equals qemu-img convert -O raw, and our allocation equals qemu-img map. */
async function expectSameAsQemu(image: string, chain = false): Promise<void> {
  const disk = chain ? openQcow2Chain(image) : Qcow2Disk.open(image);
  try {
    const expected = await qemuRaw(image, `${image}.raw`);
    expect(disk.size).toBe(expected.length);
    expect(Buffer.compare(readAll(disk), expected)).toBe(0);
    const states = diskStates(disk, 512);
    expect(states).toEqual(await qemuMapStates(image, disk.size, 512));
    expect(states.every((s) => s !== undefined)).toBe(true);
  } finally {
    disk.close();
  }
}

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  await requireTool('qemu-io', 'qemu-utils');
  dir = await tempDir('qcow2-read-');
  raw = join(dir, 'mixed.raw');
  writeMixedRaw(raw, SIZE);
});

describe('qcow2 images made by qemu-img read byte-identically to qemu-img convert -O raw', () => {
  for (const clusterSize of [512, 65536, 2 * 1024 * 1024]) {
    for (const compat of ['1.1', '0.10']) {
      it(`reads a compat ${compat} image with ${clusterSize}-byte clusters, with zero and discarded clusters`, async () => {
        const image = join(dir, `c${clusterSize}-${compat}.qcow2`);
        await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-o', `cluster_size=${clusterSize},compat=${compat}`, raw, image]);
        await qemuIo(image, ['write -P 0xab 65000 9000', 'write -z 2097152 1048576', 'discard 0 4096', 'write -P 7 4194304 1536']);
        await expectSameAsQemu(image);
      });
    }
  }

  it('reads deflate-compressed clusters (qemu-img convert -c) at 512 B, 64 KiB and 2 MiB clusters', async () => {
    for (const clusterSize of [512, 65536, 2 * 1024 * 1024]) {
      const image = join(dir, `z${clusterSize}.qcow2`);
      await execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `cluster_size=${clusterSize}`, raw, image]);
      await expectSameAsQemu(image);
    }
  });

  it('reads zstd-compressed clusters', async () => {
    const image = join(dir, 'zstd.qcow2');
    await execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', raw, image]);
    const facts = Qcow2Disk.open(image);
    expect(facts.facts().compressionType).toBe('zstd');
    facts.close();
    await expectSameAsQemu(image);
  });

  it('reads extended L2 entries (subclusters), partly allocated and zeroed', async () => {
    const image = join(dir, 'extl2.qcow2');
    const base = join(dir, 'extl2-base.raw');
    writeMixedRaw(base, SIZE);
    await execa('qemu-img', ['create', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=65536', '-b', base, '-F', 'raw', image]);
    await qemuIo(image, ['write -P 0x11 2048 2048', 'write -P 0x22 70000 100', 'write -z 131072 4096', 'write -P 0x33 1100000 300000', 'discard 1200000 65536']);
    await expectSameAsQemu(image, true);
  });

  it('reads a lazy-refcounts image qemu wrote', async () => {
    const image = join(dir, 'lazy.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-o', 'lazy_refcounts=on', image, String(SIZE)]);
    await qemuIo(image, ['write -P 0x44 0 200000', 'write -P 0x55 3000000 70000']);
    const disk = Qcow2Disk.open(image);
    expect(disk.facts().lazyRefcounts).toBe(true);
    disk.close();
    await expectSameAsQemu(image);
  });

  it('reads a backing chain of depth 3 (raw base, three qcow2 layers, one v2) with zero clusters hiding the backing', async () => {
    const base = join(dir, 'chain-base.raw');
    writeMixedRaw(base, SIZE - 512 * 7); // a base shorter than the overlays reads zeros past its end
    const l1 = join(dir, 'chain-1.qcow2');
    const l2 = join(dir, 'chain-2.qcow2');
    const l3 = join(dir, 'chain-3.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'raw', l1, String(SIZE)]);
    await qemuIo(l1, ['write -P 0x61 10000 150000', 'write -z 1100000 65536']);
    await execa('qemu-img', ['create', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=4096', '-b', 'chain-1.qcow2', '-F', 'qcow2', l2]);
    await qemuIo(l2, ['write -P 0x62 100000 70000', 'write -P 0x63 4190000 4000']);
    await execa('qemu-img', ['create', '-f', 'qcow2', '-b', l2, '-F', 'qcow2', l3]);
    await qemuIo(l3, ['write -P 0x64 0 1000', 'write -z 120000 300000', 'discard 3145728 65536']);
    const disk = openQcow2Chain(l3);
    expect(disk.backing?.backing?.backing?.format).toBe('raw');
    disk.close();
    await expectSameAsQemu(l3, true);
  });

  it('reads an overlay whose L2 tables cover only a few of its spans: the spans without one read through to the backing file', async () => {
    // 512-byte clusters: one L2 table maps 32 KiB, so the disk has ~130 spans and most have no table.
    const base = join(dir, 'spans-base.raw');
    writeMixedRaw(base, SIZE);
    const overlay = join(dir, 'spans.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-o', 'cluster_size=512', '-b', base, '-F', 'raw', overlay, String(SIZE)]);
    await qemuIo(overlay, ['write -P 0x71 32256 1536', 'write -z 1048576 40448', 'write -P 0x72 4193792 2048']);
    await expectSameAsQemu(overlay, true);
  });
});
