import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay, RawFileDisk } from '../../../src/disk/index.js';
import { tempDir } from '../../helpers/tmp.js';

const SIZE = 64 * 1024;

type Op = { kind: 'write'; position: number; length: number; seed: number } | { kind: 'discard'; position: number; length: number } | { kind: 'grow'; by: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), position: fc.nat(SIZE - 1), length: fc.integer({ min: 1, max: 12000 }), seed: fc.nat(255) }),
  fc.record({ kind: fc.constant('discard' as const), position: fc.nat(SIZE - 1), length: fc.integer({ min: 1, max: 12000 }) }),
  fc.record({ kind: fc.constant('grow' as const), by: fc.integer({ min: 1, max: 9000 }) }),
);

function fill(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i += 1) b[i] = (seed + i * 7) & 0xff || 1;
  return b;
}

describe('Overlay', () => {
  it('reads like a plain buffer after any sequence of writes, discards and grows, and never touches the base', async () => {
    const dir = await tempDir();
    const file = join(dir, 'base.img');
    const original = fill(SIZE, 3);
    writeFileSync(file, original);
    await fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), fc.boolean(), (ops, spill) => {
        const base = RawFileDisk.open(file, { readOnly: true });
        // A tiny memory limit forces the spill file path.
        const overlay = new Overlay(base, spill ? { memoryLimit: 3 * 4096 } : {});
        let model = Buffer.from(original);
        try {
          for (const o of ops) {
            if (o.kind === 'grow') {
              overlay.resize(model.length + o.by);
              model = Buffer.concat([model, Buffer.alloc(o.by)]);
              continue;
            }
            const length = Math.min(o.length, model.length - o.position);
            if (o.kind === 'write') {
              const data = fill(length, o.seed);
              overlay.write(data, o.position);
              data.copy(model, o.position);
            } else {
              overlay.discard(o.position, length);
              model.fill(0, o.position, o.position + length);
            }
          }
          expect(overlay.size).toBe(model.length);
          const all = Buffer.alloc(model.length);
          overlay.read(all, 0);
          expect(all.equals(model)).toBe(true);
          // allocation covers the range exactly, and 'zero' ranges read as zeros.
          const extents = overlay.allocation(0, model.length);
          let at = 0;
          for (const e of extents) {
            expect(e.position).toBe(at);
            if (e.state === 'zero') expect(model.subarray(e.position, e.position + e.length).every((b) => b === 0)).toBe(true);
            at += e.length;
          }
          expect(at).toBe(model.length);
          // changes() replays to the same bytes.
          const replay = Buffer.concat([original, Buffer.alloc(model.length - original.length)]);
          for (const run of overlay.changes(8192)) {
            if (run.zero) replay.fill(0, run.position, run.position + run.length);
            else Buffer.concat(run.chunks).copy(replay, run.position);
          }
          expect(replay.equals(model)).toBe(true);
        } finally {
          overlay.close();
          base.close();
        }
        expect(readFileSync(file).equals(original)).toBe(true);
      }),
      { numRuns: 150 },
    );
    // Every spill file is gone after close.
    expect(readdirSync(dir)).toEqual(['base.img']);
  });

  it('keeps changes past the memory limit in a temp file beside the image', async () => {
    const dir = await tempDir();
    const file = join(dir, 'base.img');
    writeFileSync(file, Buffer.alloc(1 << 20));
    const base = RawFileDisk.open(file, { readOnly: true });
    const overlay = new Overlay(base, { memoryLimit: 64 * 1024 });
    overlay.write(fill(512 * 1024, 9), 0);
    expect(overlay.spilledBytes).toBe(512 * 1024 - 64 * 1024);
    expect(readdirSync(dir).filter((n) => /^\.base\.img\.diskwright-.*\.tmp$/.test(n))).toHaveLength(1);
    const back = Buffer.alloc(512 * 1024);
    overlay.read(back, 0);
    expect(back.equals(fill(512 * 1024, 9))).toBe(true);
    overlay.close();
    base.close();
    expect(readdirSync(dir)).toEqual(['base.img']);
  });
});
