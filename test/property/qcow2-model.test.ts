import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { createQcow2, openQcow2Chain, Qcow2Disk } from '../../src/disk/qcow2/index.js';
import { pattern, readAll } from '../helpers/qcow2.js';
import { tempDir } from '../helpers/tmp.js';

const dir = await tempDir('qcow2-model-');
let counter = 0;
const MAX = 2 * 1024 * 1024;

type Op =
  | { kind: 'write'; at: number; length: number; seed: number }
  | { kind: 'discard'; at: number; length: number }
  | { kind: 'grow'; by: number }
  | { kind: 'reopen' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), at: fc.nat({ max: MAX }), length: fc.integer({ min: 1, max: 200_000 }), seed: fc.integer({ min: 1, max: 1e9 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('discard' as const), at: fc.nat({ max: MAX }), length: fc.integer({ min: 1, max: 300_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('grow' as const), by: fc.integer({ min: 1, max: 600 }).map((n) => n * 512) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

describe('a qcow2 Disk behaves like a plain buffer', () => {
  test.prop(
    [fc.constantFrom(512, 4096, 65536), fc.constantFrom('1.1', '0.10' as const), fc.boolean(), fc.array(op, { minLength: 1, maxLength: 14 })],
    { numRuns: 14 },
  )('random writes, discards, grows and reopens match the model and pass qemu-img check and compare', async (clusterSize, compat, withBacking, ops) => {
    const id = counter++;
    const image = join(dir, `m${id}.qcow2`);
    let size = 1024 * 1024 + 512 * 3;
    let model = new Uint8Array(size);
    if (withBacking) {
      const base = join(dir, `m${id}.base`);
      const baseBytes = pattern(size - 4096, id + 7);
      writeFileSync(base, baseBytes);
      model.set(baseBytes);
      createQcow2(image, { size, clusterSize, compat, backingFile: `m${id}.base`, backingFormat: 'raw' });
    } else createQcow2(image, { size, clusterSize, compat });
    const open = (): Qcow2Disk => (withBacking ? openQcow2Chain(image, { readOnly: false }) : Qcow2Disk.open(image, { readOnly: false }));
    let disk = open();
    try {
      for (const o of ops) {
        if (o.kind === 'write') {
          const at = Math.min(o.at, size - 1);
          const bytes = pattern(Math.min(o.length, size - at), o.seed);
          disk.write(bytes, at);
          model.set(bytes, at);
        } else if (o.kind === 'discard') {
          const at = Math.min(o.at, size - 1);
          const length = Math.min(o.length, size - at);
          disk.discard(at, length);
          model.fill(0, at, at + length);
        } else if (o.kind === 'grow') {
          size += o.by;
          disk.resize(size);
          const grown = new Uint8Array(size);
          grown.set(model);
          model = grown;
        } else {
          disk.close();
          disk = open();
        }
      }
      expect(Buffer.compare(readAll(disk), model)).toBe(0);
    } finally {
      disk.close();
    }
    const check = await execa('qemu-img', ['check', image], { reject: false });
    expect(check.stdout + check.stderr).toContain('No errors were found');
    expect(check.exitCode).toBe(0);
    writeFileSync(`${image}.raw`, model);
    const compare = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', image, `${image}.raw`], { reject: false });
    expect(compare.exitCode).toBe(0);
  });
});
