import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { closeSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitOverlay, FreeBlockWriter, Overlay, RawFileDisk } from '../../../src/disk/index.js';
import { FaultyDisk } from '../../helpers/faulty-disk.js';
import { tempDir } from '../../helpers/tmp.js';

const SIZE = 64 * 4096;
const PAGE = 4096;

/** A sparse image of SIZE bytes and a writer over it where pages in `unused` are free. */
function setup(file: string, unused: (page: number) => boolean): { raw: RawFileDisk; overlay: Overlay; writer: FreeBlockWriter } {
  const fd = openSync(file, 'w');
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  const raw = RawFileDisk.open(file, { readOnly: false });
  const overlay = new Overlay(raw);
  const isUnused = (position: number, length: number): boolean => {
    for (let p = Math.floor(position / PAGE); p <= Math.floor((position + length - 1) / PAGE); p += 1) if (!unused(p)) return false;
    return true;
  };
  return { raw, overlay, writer: new FreeBlockWriter(overlay, isUnused) };
}

describe('FreeBlockWriter (file data in place into blocks the committed filesystem does not use)', async () => {
  const dir = await tempDir();

  it('writes whole unused pages to the image and everything else to the overlay; reads see all of it, and the commit leaves the same bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ position: fc.nat(SIZE - 1), length: fc.integer({ min: 1, max: 5 * PAGE }), fill: fc.integer({ min: 1, max: 255 }) }), { maxLength: 12 }), fc.integer({ min: 1, max: 1000 }), (writes, seed) => {
        const unused = (page: number): boolean => (page * 7 + seed) % 4 !== 0;
        const file = join(dir, 'prop.img');
        const { raw, overlay, writer } = setup(file, unused);
        const model = Buffer.alloc(SIZE);
        try {
          // A tool's staged change in an unused page (it zeroed a block it allocated): superseded.
          overlay.write(Buffer.alloc(PAGE, 0xee), 5 * PAGE);
          model.fill(0xee, 5 * PAGE, 6 * PAGE);
          for (const w of writes) {
            const length = Math.min(w.length, SIZE - w.position);
            const bytes = Buffer.alloc(length, w.fill);
            writer.write(bytes, w.position);
            bytes.copy(model, w.position);
          }
          const seen = Buffer.alloc(SIZE);
          overlay.read(seen, 0);
          expect(seen.equals(model)).toBe(true);
          // What reached the image before the commit: only whole unused pages.
          const early = readFileSync(file);
          for (let page = 0; page < SIZE / PAGE; page += 1) {
            const bytes = early.subarray(page * PAGE, (page + 1) * PAGE);
            if (!unused(page)) expect(bytes.every((b) => b === 0)).toBe(true);
          }
          commitOverlay(overlay, { durable: false });
          writer.keep();
          expect(readFileSync(file).equals(model)).toBe(true);
        } finally {
          overlay.close();
          raw.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('zero() makes ranges read as zeros between writes: free pages punched in the image (no bytes written, none counted), the rest discarded in the overlay; the commit leaves the same bytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ position: fc.nat(SIZE - 1), length: fc.integer({ min: 1, max: 9 * PAGE }), fill: fc.integer({ min: 0, max: 255 }) }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 1000 }),
        (ops, seed) => {
          const unused = (page: number): boolean => (page * 5 + seed) % 3 !== 0;
          const file = join(dir, 'zero.img');
          const { raw, overlay, writer } = setup(file, unused);
          // Old bytes everywhere (a used filesystem's blocks, stale bytes in free ones).
          raw.write(Buffer.alloc(SIZE, 0x77), 0);
          const model = Buffer.alloc(SIZE, 0x77);
          try {
            let written = 0;
            for (const op of ops) {
              const length = Math.min(op.length, SIZE - op.position);
              // fill 0 = a zero() of the range, else a write of that byte.
              if (op.fill === 0) writer.zero(op.position, length);
              else writer.write(Buffer.alloc(length, op.fill), op.position);
              model.fill(op.fill, op.position, op.position + length);
              if (op.fill !== 0) written += length;
            }
            expect(writer.bytesInPlace).toBeLessThanOrEqual(written);
            const seen = Buffer.alloc(SIZE);
            overlay.read(seen, 0);
            expect(seen.equals(model)).toBe(true);
            // Used pages of the image are untouched before the commit.
            const early = readFileSync(file);
            for (let page = 0; page < SIZE / PAGE; page += 1) if (!unused(page)) expect(early.subarray(page * PAGE, (page + 1) * PAGE).every((b) => b === 0x77)).toBe(true);
            commitOverlay(overlay, { durable: false });
            writer.keep();
            expect(readFileSync(file).equals(model)).toBe(true);
          } finally {
            overlay.close();
            raw.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('undo punches every page written in place, so an uncommitted session leaves the image as it was', () => {
    const file = join(dir, 'undo.img');
    const { raw, overlay, writer } = setup(file, (page) => page !== 3);
    try {
      writer.write(Buffer.alloc(10 * PAGE + 100, 9), PAGE - 50);
      expect(writer.bytesInPlace).toBe(9 * PAGE);
      expect(writer.inPlace).toEqual([
        { position: PAGE, length: 2 * PAGE },
        { position: 4 * PAGE, length: 7 * PAGE },
      ]);
      writer.undo();
      writer.undo();
      expect(readFileSync(file).equals(Buffer.alloc(SIZE))).toBe(true);
    } finally {
      overlay.close();
      raw.close();
    }
  });

  it('a disk full while writing in place undoes what was written and says nothing was changed', () => {
    const file = join(dir, 'full.img');
    const fd = openSync(file, 'w');
    ftruncateSync(fd, SIZE);
    closeSync(fd);
    const raw = RawFileDisk.open(file, { readOnly: false });
    const faulty = new FaultyDisk(raw, 5);
    const overlay = new Overlay(faulty);
    const writer = new FreeBlockWriter(overlay, () => true);
    try {
      expect(() => writer.write(Buffer.alloc(16 * PAGE, 1), 0)).toThrow(/ENOSPC.*nothing was changed \(the commit was rolled back\)/);
      expect(writer.inPlace).toEqual([]);
      expect(readFileSync(file).equals(Buffer.alloc(SIZE))).toBe(true);
      expect(faulty.used).toBeLessThanOrEqual(5);
    } finally {
      overlay.close();
      raw.close();
    }
  });
});
