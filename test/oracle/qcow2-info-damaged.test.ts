import { execa } from 'execa';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `info` on a qcow2 whose header is sound but whose data is damaged (an L2 entry pointing past the
 * end of the file): like `qemu-img info` it still shows the image facts, then the driver's own
 * error — its code and words, not a stringified DiskwrightError inside E_IO — and exits 1.
 */

const SBIN = { PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const L2_OFFSET_MASK = 0x00ff_ffff_ffff_fe00n; // qcow2.txt, "L1 table entry" / "Standard Cluster Descriptor": bits 9-55
let dir: string;
let image: string;
let guestCluster: number;
let badHost: bigint;

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  await requireTool('sfdisk', 'fdisk');
  await requireTool('mkfs.ext4', 'e2fsprogs');
  dir = await tempDir('qcow2-info-damaged-');
  const raw = join(dir, 'disk.raw');
  await execa('truncate', ['-s', '32M', raw]);
  await execa('sfdisk', ['-q', raw], { input: 'label: dos\nstart=2048, type=83\n', env: SBIN });
  await execa('mkfs.ext4', ['-q', '-F', '-E', `offset=${2048 * 512}`, raw, '31M'], { env: SBIN });
  image = join(dir, 'damaged.qcow2');
  await execa('qemu-img', ['convert', '-O', 'qcow2', raw, image]);
  // Point the L2 entry of the cluster holding partition 1's superblock past the end of the file.
  const bytes = readFileSync(image);
  const clusterSize = 2 ** bytes.readUInt32BE(20);
  const l1 = Number(bytes.readBigUInt64BE(40));
  const l2 = Number(bytes.readBigUInt64BE(l1) & L2_OFFSET_MASK);
  guestCluster = Math.floor((2048 * 512 + 1024) / clusterSize);
  const entry = bytes.readBigUInt64BE(l2 + guestCluster * 8);
  expect(entry & L2_OFFSET_MASK).not.toBe(0n); // qemu-img stored that cluster
  badHost = BigInt(bytes.length + 1024 * clusterSize);
  bytes.writeBigUInt64BE((entry & ~L2_OFFSET_MASK) | badHost, l2 + guestCluster * 8);
  writeFileSync(image, bytes);
});

describe('info on a qcow2 with damaged data', () => {
  it('is damage qemu-img check finds while qemu-img info still describes the image', async () => {
    const check = await execa('qemu-img', ['check', image], { reject: false });
    expect(check.exitCode).toBe(2); // corruptions found
    expect((await execa('qemu-img', ['info', image])).exitCode).toBe(0);
  });

  it('prints the image facts, then the driver\'s own one-line error with its code, and exits 1', async () => {
    const oracle = JSON.parse((await execa('qemu-img', ['info', '--output=json', image])).stdout) as Record<string, number | string>;
    const size = statSync(image).size;
    const text = await runInProcess(['info', image, '--partition', '1']);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`file format: qcow2\nvirtual size: 32.0 MiB (${oracle['virtual-size']} bytes)\n`);
    expect(text.stdout).toContain(`cluster_size: ${oracle['cluster-size']}\n`);
    expect(text.stdout).not.toContain('Filesystem');
    expect(text.stderr.split('\n')[0]).toBe(
      `diskwright: reading the filesystem header: qcow2: data cluster of guest cluster ${guestCluster} at ${badHost} is past the end of the file (${size}) [E_OUT_OF_RANGE]`,
    );
    expect(text.stderr).not.toMatch(/DiskwrightError|E_IO/);

    const json = await runInProcess(['info', image, '--partition', '1', '--json']);
    expect(json.code).toBe(1);
    const ours = JSON.parse(json.stdout) as { imageInfo: Record<string, unknown>; fields?: unknown };
    expect(ours.imageInfo).toMatchObject({ format: 'qcow2', 'virtual-size': oracle['virtual-size'], 'cluster-size': oracle['cluster-size'], 'actual-size': oracle['actual-size'] });
    expect(ours.fields).toBeUndefined();
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'E_OUT_OF_RANGE', hint: expect.stringContaining('qemu-img check') } });
  });
});
