import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { isDiskwrightError } from '../../../src/errors.js';
import { createQcow2, openQcow2Chain, Qcow2Disk } from '../../../src/disk/qcow2/index.js';
import { pattern, readAll } from '../../helpers/qcow2.js';
import { tempDir } from '../../helpers/tmp.js';

const dir = await tempDir('qcow2-hostile-');
let good: Buffer;
let counter = 0;

/** A small image with data in two L2 tables' worth of clusters (4 KiB clusters). */
beforeAll(() => {
  const path = join(dir, 'good.qcow2');
  createQcow2(path, { size: 4 * 1024 * 1024, clusterSize: 4096 });
  const disk = Qcow2Disk.open(path, { readOnly: false });
  disk.write(pattern(9000, 1), 1000);
  disk.write(pattern(5000, 2), 3 * 1024 * 1024);
  disk.close();
  good = readFileSync(path);
});

function variant(mutate: (bytes: Buffer, dv: DataView) => void): string {
  const bytes = Buffer.from(good);
  mutate(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const path = join(dir, `bad-${counter++}.qcow2`);
  writeFileSync(path, bytes);
  return path;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isDiskwrightError(error)) return error.code;
    throw error;
  }
  return 'none';
}

const openAndRead = (path: string) => () => {
  const disk = Qcow2Disk.open(path);
  try {
    readAll(disk, 1 << 20);
  } finally {
    disk.close();
  }
};

const l1Offset = (dv: DataView): number => Number(dv.getBigUint64(40));

describe('hostile qcow2 headers and tables give a typed one-line error', () => {
  it('refuses a huge L1 table', () => {
    expect(codeOf(openAndRead(variant((_, dv) => dv.setUint32(36, 0xffffffff))))).toBe('E_OUT_OF_RANGE');
  });

  it('refuses an L1 table too small for the virtual size', () => {
    expect(codeOf(openAndRead(variant((_, dv) => dv.setBigUint64(24, 1n << 50n))))).toBe('E_OUT_OF_RANGE');
  });

  it('refuses a refcount table past the end of the file', () => {
    expect(codeOf(openAndRead(variant((_, dv) => dv.setBigUint64(48, 1n << 40n))))).toBe('E_OUT_OF_RANGE');
  });

  it('refuses an L2 table past the end of the file', () => {
    expect(codeOf(openAndRead(variant((_, dv) => dv.setBigUint64(l1Offset(dv), (1n << 63n) | (1n << 45n)))))).toBe('E_OUT_OF_RANGE');
  });

  it('refuses an L2 table that overlaps the L1 table', () => {
    expect(codeOf(openAndRead(variant((_, dv) => dv.setBigUint64(l1Offset(dv), (1n << 63n) | BigInt(l1Offset(dv))))))).toBe('E_OVERLAP');
  });

  it('refuses a data cluster that overlaps the header', () => {
    const path2 = variant((_, dv) => {
      const l2 = Number(dv.getBigUint64(l1Offset(dv)) & 0x00fffffffffffe00n);
      dv.setBigUint64(l2 + 8, (1n << 63n) | BigInt(Number(dv.getBigUint64(48))));
    });
    expect(codeOf(openAndRead(path2))).toBe('E_OVERLAP');
  });

  it('refuses unknown incompatible features, external data files and encryption', () => {
    expect(codeOf(openAndRead(variant((b) => (b[72] = 0x80))))).toBe('E_UNSUPPORTED_FEATURE');
    expect(codeOf(openAndRead(variant((b) => (b[79] = 4))))).toBe('E_UNSUPPORTED_FEATURE');
    expect(codeOf(openAndRead(variant((_, dv) => dv.setUint32(32, 2))))).toBe('E_UNSUPPORTED_FEATURE');
  });

  it('refuses cluster sizes outside 512 B–2 MiB and a bad header length', () => {
    expect(codeOf(openAndRead(variant((_, dv) => dv.setUint32(20, 30))))).toBe('E_LIMIT');
    expect(codeOf(openAndRead(variant((_, dv) => dv.setUint32(100, 100000))))).toBe('E_OUT_OF_RANGE');
  });

  it('refuses a backing loop, a missing backing format and an unallowed backing file', async () => {
    const a = join(dir, 'loop-a.qcow2');
    const b = join(dir, 'loop-b.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', a, '1M']);
    await execa('qemu-img', ['create', '-f', 'qcow2', '-b', a, '-F', 'qcow2', b]);
    await execa('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-b', b, '-F', 'qcow2', a]);
    expect(codeOf(() => openQcow2Chain(a))).toBe('E_LOOP');
    expect(codeOf(() => Qcow2Disk.open(a))).toBe('E_UNTRUSTED_BACKING');
    const c = join(dir, 'noformat.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-u', '-b', a, '-F', 'qcow2', c, '1M']);
    const bytes = readFileSync(c);
    bytes.writeUInt32BE(0x12345678, 112); // rename the backing-format extension away
    writeFileSync(c, bytes);
    expect(codeOf(() => openQcow2Chain(c))).toBe('E_UNTRUSTED_BACKING');
  });

  test.prop([fc.array(fc.record({ at: fc.nat({ max: 4096 + 512 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 12 })], { numRuns: 150 })(
    'any corruption of the header and first tables reads or fails with a DiskwrightError, never a crash',
    (edits) => {
      const path = variant((bytes) => {
        for (const { at, value } of edits) {
          // Spread edits over the header cluster and the refcount table / L1 clusters.
          const where = at < 4096 ? at : 4096 * (1 + (at % 3)) + (at % 512);
          if (where < bytes.length) bytes[where] = value;
        }
      });
      const code = codeOf(openAndRead(path));
      expect(typeof code).toBe('string');
    },
  );
});
