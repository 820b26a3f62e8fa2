import { execa } from 'execa';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/oracle.js';
import { runInProcess } from '../helpers/cli.js';
import { writeMixedRaw } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let raw: string;
const SIZE = 24 * 1024 * 1024;

async function expectClean(image: string, against: string): Promise<void> {
  const check = await execa('qemu-img', ['check', image], { reject: false });
  expect(check.stdout).toContain('No errors were found');
  const compare = await execa('qemu-img', ['compare', image, against], { reject: false });
  expect(compare.stdout).toContain('Images are identical');
}

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir('convert-');
  raw = join(dir, 'disk.raw');
  writeMixedRaw(raw, SIZE);
});

describe('diskwright convert', () => {
  it('pads a raw input that is not whole sectors to the next 512 bytes in qcow2 output, as qemu-img does', async () => {
    const odd = join(dir, 'odd.raw');
    const bytes = Buffer.alloc(3_000_000);
    for (let i = 0; i < bytes.length; i += 7) bytes[i] = (i * 13) & 0xff;
    writeFileSync(odd, bytes);
    for (const [name, extra] of [['odd.qcow2', []], ['odd-c.qcow2', ['-c']], ['odd-512.qcow2', ['--cluster-size', '512']]] as const) {
      const out = join(dir, name);
      const result = await runInProcess(['convert', odd, out, '-O', 'qcow2', ...extra]);
      expect(result.stderr).toBe('');
      const anchor = join(dir, `qemu-${name}`);
      await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', odd, anchor]);
      await expectClean(out, anchor);
      const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', out])).stdout) as Record<string, unknown>;
      expect(info['virtual-size']).toBe(Math.ceil(bytes.length / 512) * 512);
    }
  });

  it('converts raw to qcow2 at 512 B, 64 KiB and 2 MiB clusters, skipping zeros, and back to a sparse raw', async () => {
    for (const cluster of ['512', '64K', '2M']) {
      const out = join(dir, `out-${cluster}.qcow2`);
      const result = await runInProcess(['convert', raw, out, '-O', 'qcow2', '--cluster-size', cluster]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      await expectClean(out, raw);
      const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', out])).stdout) as Record<string, unknown>;
      expect(info['cluster-size']).toBe(cluster === '512' ? 512 : cluster === '64K' ? 65536 : 2097152);
      const anchor = join(dir, `qemu-${cluster}.qcow2`);
      await execa('qemu-img', ['convert', '-O', 'qcow2', '-o', `cluster_size=${info['cluster-size'] as number}`, raw, anchor]);
      expect(statSync(out).size).toBeLessThanOrEqual(statSync(anchor).size + (info['cluster-size'] as number));
    }
    const back = join(dir, 'back.raw');
    expect((await runInProcess(['convert', join(dir, 'out-64K.qcow2'), back])).code).toBe(0);
    expect(Buffer.compare(readFileSync(back), readFileSync(raw))).toBe(0);
    expect(statSync(back).blocks * 512).toBeLessThan(SIZE / 4);
  });

  it('compresses with -c into an image qemu-img reads, checks and finds identical', async () => {
    const out = join(dir, 'c.qcow2');
    const result = await runInProcess(['convert', raw, out, '-O', 'qcow2', '-c', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ output: out, format: 'qcow2', bytes: SIZE });
    await expectClean(out, raw);
    const map = JSON.parse((await execa('qemu-img', ['map', '--output=json', out])).stdout) as { data: boolean; compressed?: boolean }[];
    expect(map.some((e) => e.data)).toBe(true);
    const check = await execa('qemu-img', ['check', out]);
    expect(check.stdout).toMatch(/[1-9][\d.]*% compressed clusters/);
  });

  it('flattens a qemu-made backing chain when told the format, and refuses to follow it when only probed', async () => {
    const top = join(dir, 'top.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-b', raw, '-F', 'raw', top]);
    await execa('qemu-io', ['-c', 'write -P 0x77 1000000 300000', top]);
    const refused = await runInProcess(['convert', top, join(dir, 'refused.raw')]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/E_UNTRUSTED_BACKING/);
    expect(refused.stderr).toMatch(/--format qcow2/);
    const flat = join(dir, 'flat.qcow2');
    expect((await runInProcess(['convert', top, flat, '--format', 'qcow2', '-O', 'qcow2'])).code).toBe(0);
    await expectClean(flat, top);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', flat])).stdout) as Record<string, unknown>;
    expect(info['backing-filename']).toBeUndefined();
  });

  it('leaves no output on a bad input and refuses to replace OUT without --force', async () => {
    const bad = join(dir, 'bad.qcow2');
    const bytes = Buffer.alloc(65536 * 3);
    bytes.write('QFI\xfb', 0, 'latin1');
    bytes.writeUInt32BE(3, 4);
    bytes.writeUInt32BE(40, 20);
    writeFileSync(bad, bytes);
    const out = join(dir, 'never.raw');
    const result = await runInProcess(['convert', bad, out, '--format', 'qcow2']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/E_LIMIT/);
    expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2); // message, then the hint
    expect(() => statSync(out)).toThrow();
    const exists = await runInProcess(['convert', raw, join(dir, 'back.raw')]);
    expect(exists.stderr).toMatch(/E_EXISTS/);
  });

  it('refuses -c --compression-type zstd with one line and a hint, and writes nothing', async () => {
    const out = join(dir, 'zstd.qcow2');
    const result = await runInProcess(['convert', raw, out, '-O', 'qcow2', '-c', '--compression-type', 'zstd']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/E_UNSUPPORTED_FEATURE/);
    expect(result.stderr).toMatch(/hint: .*compression_type=zstd/);
    expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    expect(() => statSync(out)).toThrow();
    const zlib = await runInProcess(['convert', raw, out, '-O', 'qcow2', '-c', '--compression-type', 'zlib']);
    expect(zlib.code).toBe(0);
    await expectClean(out, raw);
  });
});

describe('diskwright create --format qcow2 and info', () => {
  it('makes an empty qcow2 and an overlay that qemu-img checks, compares and describes like info', async () => {
    const empty = join(dir, 'empty.qcow2');
    expect((await runInProcess(['create', empty, '--format', 'qcow2', '--size', '10G'])).code).toBe(0);
    expect((await execa('qemu-img', ['check', empty])).stdout).toContain('No errors were found');
    const overlay = join(dir, 'overlay.qcow2');
    const created = await runInProcess(['create', overlay, '--format', 'qcow2', '--backing', 'disk.raw', '--backing-format', 'raw', '--json']);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ size: SIZE, backingFile: 'disk.raw', backingFormat: 'raw' });
    await expectClean(overlay, raw);
    const ours = JSON.parse((await runInProcess(['info', overlay, '--json'])).stdout) as { imageInfo: Record<string, unknown> };
    const theirs = JSON.parse((await execa('qemu-img', ['info', '--output=json', overlay])).stdout) as Record<string, unknown>;
    for (const key of ['virtual-size', 'actual-size', 'cluster-size', 'format', 'backing-filename', 'backing-filename-format', 'full-backing-filename', 'dirty-flag', 'format-specific']) {
      expect({ key, value: ours.imageInfo[key] }).toEqual({ key, value: theirs[key] });
    }
  });
});
