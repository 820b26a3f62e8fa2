import { execa } from 'execa';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertImage } from '../../src/disk/qcow2/convert.js';
import { DeflatePool } from '../../src/disk/qcow2/deflate-pool.js';
import { Qcow2StreamWriter } from '../../src/disk/qcow2/stream-writer.js';
import { requireTool } from '../helpers/oracle.js';
import { pattern } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;

async function expectClean(image: string, against: string): Promise<void> {
  const check = await execa('qemu-img', ['check', image], { reject: false });
  expect(check.stdout).toContain('No errors were found');
  expect(check.exitCode).toBe(0);
  const compare = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', image, against], { reject: false });
  expect(compare.stdout).toContain('Images are identical');
}

/**
 * Random data, compressible text, zero runs and never-written holes, spread so that 512-byte
 * clusters cross hundreds of L2 tables and the 2 MiB conversion chunks cut through every kind.
 */
function writeSpreadRaw(path: string, size: number): void {
  const bytes = new Uint8Array(size);
  const text = new TextEncoder().encode('diskwright convert keeps guest order. '.repeat(4000));
  for (let at = 0, i = 0; at < size; at += 397_312, i++) {
    const piece = i % 3 === 0 ? pattern(90_001, i + 1) : i % 3 === 1 ? text.subarray(0, 120_000) : pattern(511, i + 7);
    bytes.set(piece.subarray(0, Math.min(piece.length, size - at)), at);
  }
  bytes.set(pattern(700, 99), size - 700);
  writeFileSync(path, bytes);
}

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir('qcow2-convert-');
});

describe('convert streams qcow2 images that qemu-img checks clean and finds identical', () => {
  it('writes data, zeros and holes across many L2 tables at 512 B, 64 KiB and 2 MiB clusters, the last cluster partial', async () => {
    // Not a multiple of 2 MiB or 64 KiB: the last cluster of the disk is short.
    const size = 13 * 1024 * 1024 + 512 * 3;
    const raw = join(dir, 'spread.raw');
    writeSpreadRaw(raw, size);
    for (const clusterSize of [512, 65536, 2 * 1024 * 1024]) {
      const out = join(dir, `spread-${clusterSize}.qcow2`);
      const summary = await convertImage(raw, out, { inputFormat: 'raw', outputFormat: 'qcow2', clusterSize });
      expect(summary.bytes).toBe(size);
      await expectClean(out, raw);
      const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', out])).stdout) as { 'virtual-size': number; 'cluster-size': number };
      expect(info['virtual-size']).toBe(size);
      expect(info['cluster-size']).toBe(clusterSize);
      // No larger than what qemu-img makes of the same input (plus one cluster of slack).
      const anchor = join(dir, `spread-${clusterSize}-qemu.qcow2`);
      await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-o', `cluster_size=${clusterSize}`, raw, anchor]);
      expect(statSync(out).size).toBeLessThanOrEqual(statSync(anchor).size + clusterSize);
      // And back: the host data runs read directly, the short last block included, holes kept.
      const back = join(dir, `spread-${clusterSize}-back.raw`);
      await convertImage(out, back, { inputFormat: 'qcow2', outputFormat: 'raw' });
      expect(Buffer.compare(readFileSync(back), readFileSync(raw))).toBe(0);
      expect(statSync(back).blocks * 512).toBeLessThan(size * 0.8);
    }
  });

  it('compresses thousands of clusters on the worker pool in guest order: two runs are byte-identical and qemu-img reads them as the raw', async () => {
    const size = 11 * 1024 * 1024;
    const raw = join(dir, 'many.raw');
    writeSpreadRaw(raw, size);
    const a = join(dir, 'many-a.qcow2');
    const b = join(dir, 'many-b.qcow2');
    for (const out of [a, b]) await convertImage(raw, out, { inputFormat: 'raw', outputFormat: 'qcow2', clusterSize: 512, compress: true });
    await expectClean(a, raw);
    const check = (await execa('qemu-img', ['check', '--output=json', a])).stdout;
    const stats = JSON.parse(check) as { 'compressed-clusters': number; 'allocated-clusters': number };
    // Text and tiny islands compress; random data is stored as it is (as qemu-img does).
    expect(stats['compressed-clusters']).toBeGreaterThan(1000);
    expect(stats['compressed-clusters']).toBeLessThan(stats['allocated-clusters']);
    expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
    // Deflated as QEMU does (raw deflate, window 4 KiB, default level): sizes close to qemu-img's.
    const anchor = join(dir, 'many-qemu.qcow2');
    await execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=512', raw, anchor]);
    expect(statSync(a).size).toBeLessThan(statSync(anchor).size * 1.1);
  });

  it('stops a -c conversion on abort with E_ABORTED, leaving neither the output nor a temp file', async () => {
    const size = 16 * 1024 * 1024;
    const raw = join(dir, 'abort.raw');
    writeSpreadRaw(raw, size);
    const out = join(dir, 'abort.qcow2');
    const controller = new AbortController();
    const run = convertImage(raw, out, {
      inputFormat: 'raw', outputFormat: 'qcow2', clusterSize: 512, compress: true, signal: controller.signal,
      onProgress: (p) => {
        if (p.bytes >= size / 4 && p.bytes < size) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(() => statSync(out)).toThrow();
    expect(readdirSync(dir).filter((name) => name.startsWith('.abort.qcow2'))).toEqual([]);
  });

  it('converts an empty disk into a valid empty image', async () => {
    const raw = join(dir, 'empty.raw');
    writeFileSync(raw, new Uint8Array(0));
    const out = join(dir, 'empty.qcow2');
    await convertImage(raw, out, { inputFormat: 'raw', outputFormat: 'qcow2' });
    await expectClean(out, raw);
  });

  it('gives each chunk its own results whatever order the workers finish in', async () => {
    const pool = new DeflatePool(2);
    try {
      const cs = 65536;
      const slow = pattern(4 * 1024 * 1024, 5); // incompressible: stored, and slow to try
      const fast = new Uint8Array(4 * 1024 * 1024).fill(0x61, 0, 3 * cs); // three compressible clusters, the rest zero
      const jobs = [slow, fast].map((bytes) => {
        const buffer = new ArrayBuffer(bytes.length);
        new Uint8Array(buffer).set(bytes);
        return pool.compress(buffer, bytes.length, cs);
      });
      const [s, f] = await Promise.all(jobs);
      expect([...s!.lengths].every((n) => n === 0)).toBe(true);
      expect(Buffer.compare(Buffer.from(s!.buffer), Buffer.from(slow))).toBe(0);
      expect([...f!.lengths.subarray(0, 3)].every((n) => n > 0 && n < cs)).toBe(true);
      expect([...f!.lengths.subarray(3)].every((n) => n === -1)).toBe(true);
      expect(f!.packed.length).toBe(f!.lengths[0]! + f!.lengths[1]! + f!.lengths[2]!);
    } finally {
      await pool.close();
    }
  });

  it('starts pool workers in a process launched with --input-type=module (workers do not inherit execArgv)', async () => {
    const pool = fileURLToPath(new URL('../../dist/disk/qcow2/deflate-pool.js', import.meta.url));
    const script = `import { DeflatePool } from ${JSON.stringify(pool)};
const p = new DeflatePool(2);
const b = new ArrayBuffer(131072); new Uint8Array(b).fill(7);
const r = await p.compress(b, 131072, 65536);
await p.close();
console.log(JSON.stringify([...r.lengths]));`;
    const result = await execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, timeout: 30_000 });
    expect(result.stderr).toBe('');
    const lengths = JSON.parse(result.stdout) as number[];
    expect(lengths).toHaveLength(2);
    expect(lengths.every((n) => n > 0 && n < 100)).toBe(true);
  });

  it('refuses clusters out of order and a compressed cluster as large as a cluster, and leaves no usable image without finish', async () => {
    const path = join(dir, 'refuse.qcow2');
    const writer = Qcow2StreamWriter.create(path, { size: 1024 * 1024, clusterSize: 65536 });
    try {
      await writer.writeClusters(3, new Uint8Array(65536).fill(1));
      expect(() => writer.writeClusters(2, new Uint8Array(65536))).toThrow(/out of order/);
      expect(() => writer.writeCompressed(5, new Uint8Array(65536))).toThrow(/compressed cluster must be/);
      expect(() => writer.writeClusters(16, new Uint8Array(65536))).toThrow(/past the end/);
    } finally {
      await writer.close();
    }
    const check = await execa('qemu-img', ['info', path], { reject: false });
    expect(check.stdout).toContain('file format: raw');
  });
});
