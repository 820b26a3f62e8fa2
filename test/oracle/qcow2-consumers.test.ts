import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { pattern } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let raw: string;
const SIZE = 16 * 1024 * 1024;

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('qcow2-consumers-');
  raw = join(dir, 'disk.raw');
  writeFileSync(raw, Buffer.alloc(SIZE));
  await execa('sfdisk', ['--quiet', raw], { input: 'label: dos\nstart=2048, size=12000, type=83\nstart=16384, type=82\n', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  const bytes = readFileSync(raw);
  bytes.set(pattern(3 * 1024 * 1024, 21), 2048 * 512 + 4096);
  bytes.set(pattern(100_000, 22), 16384 * 512 + 1234);
  writeFileSync(raw, bytes);
});

describe('qcow2 images are taken wherever a disk image is', () => {
  it('partitions and extract read a qemu-made qcow2 (plain and compressed) exactly as the raw disk', async () => {
    const expectedTable = JSON.parse((await runInProcess(['partitions', raw, '--json'])).stdout) as { partitiontable: { partitions: unknown[] } };
    for (const extra of [[], ['-c']]) {
      const image = join(dir, `disk${extra.join('')}.qcow2`);
      await execa('qemu-img', ['convert', ...extra, '-O', 'qcow2', raw, image]);
      const listed = await runInProcess(['partitions', image, '--json']);
      expect(listed.code).toBe(0);
      const withoutNode = (parts: unknown[]) => parts.map((p) => ({ ...(p as object), node: undefined }));
      expect(withoutNode((JSON.parse(listed.stdout) as typeof expectedTable).partitiontable.partitions)).toEqual(withoutNode(expectedTable.partitiontable.partitions));
      expect(expectedTable.partitiontable.partitions).toHaveLength(2);
      for (const [number, start, sectors] of [[1, 2048, 12000], [2, 16384, SIZE / 512 - 16384]] as const) {
        const out = join(dir, `p${number}${extra.join('')}`);
        const result = await runInProcess(['extract', image, '-p', String(number), '-o', out]);
        expect(result.stderr).toBe('');
        expect(Buffer.compare(readFileSync(out), readFileSync(raw).subarray(start * 512, (start + sectors) * 512))).toBe(0);
      }
    }
  });

  it('an overlay with a backing file is read only with --format qcow2', async () => {
    const overlay = join(dir, 'overlay.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-b', raw, '-F', 'raw', overlay]);
    await execa('qemu-io', ['-c', 'write -P 0x42 1100000 5000', overlay]);
    const refused = await runInProcess(['extract', overlay, '-p', '1', '-o', join(dir, 'never')]);
    expect(refused.stderr).toMatch(/E_UNTRUSTED_BACKING/);
    const out = join(dir, 'overlay-p1');
    expect((await runInProcess(['extract', overlay, '--format', 'qcow2', '-p', '1', '-o', out])).code).toBe(0);
    const expected = readFileSync(raw).subarray(2048 * 512, (2048 + 12000) * 512);
    expected.fill(0x42, 1100000 - 2048 * 512, 1100000 - 2048 * 512 + 5000);
    expect(Buffer.compare(readFileSync(out), expected)).toBe(0);
  });
});
