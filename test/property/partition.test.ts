import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { isDiskwrightError } from '../../src/errors.js';
import { formatSfdiskJson, formatSfdiskList, parsePartitionTable, type PartitionTable } from '../../src/partition/index.js';
import { articleLikeDos, dosImage, entry, gptImage } from '../unit/partition/build.js';

/** Parses; returns the table, or 'error' for a DiskwrightError; anything else fails the property. */
function parseOrTypedError(image: Uint8Array): PartitionTable | 'error' {
  try {
    const table = parsePartitionTable(image);
    // Whatever parses must also format without throwing.
    formatSfdiskJson(table, 'x.img');
    formatSfdiskList(table, 'x.img');
    return table;
  } catch (error) {
    if (isDiskwrightError(error)) return 'error';
    throw error;
  }
}

const GPT_BASE = gptImage(
  {
    diskGuid: '01234567-89AB-CDEF-0123-456789ABCDEF',
    firstUsableLba: 40n,
    partitions: [entry(1, 40n, 1000n, { name: 'root' }), entry(2, 1001n, 2000n), entry(7, 3000n, 4000n)],
  },
  4096,
);
const DOS_BASE = articleLikeDos();

/** Offsets worth corrupting: table sectors of the two base images. */
const DOS_HOT = [0, 2000, 2600, 3100].map((lba) => lba * 512 + 440);
const GPT_HOT = [512, 1024, 1024 + 128, 4095 * 512, (4095 - 32) * 512];

describe('partition parsing never fails with anything but a DiskwrightError', () => {
  test.prop([fc.uint8Array({ maxLength: 6000 }), fc.boolean(), fc.boolean()], { numRuns: 300 })(
    'any bytes (with or without a 0x55AA signature and a protective entry) give a table or a DiskwrightError',
    (bytes, signature, protective) => {
      const image = bytes.slice();
      if (signature && image.length >= 512) {
        image[510] = 0x55;
        image[511] = 0xaa;
      }
      if (protective && image.length >= 512) image[446 + 4] = 0xee;
      parseOrTypedError(image);
    },
  );

  test.prop(
    [fc.constantFrom('dos', 'gpt'), fc.array(fc.tuple(fc.nat(600), fc.nat(255)), { minLength: 1, maxLength: 24 }), fc.nat(4)],
    { numRuns: 400 },
  )('a valid table with corrupted bytes gives a table or a DiskwrightError', (label, edits, hotIndex) => {
    const image = (label === 'dos' ? DOS_BASE : GPT_BASE).slice();
    const hot = label === 'dos' ? DOS_HOT : GPT_HOT;
    for (const [delta, value] of edits) {
      const at = hot[(hotIndex + delta) % hot.length]! + (delta % 72);
      if (at < image.length) image[at] = value;
    }
    parseOrTypedError(image);
  });

  test.prop([fc.constantFrom('dos', 'gpt'), fc.nat()], { numRuns: 200 })('a valid image truncated anywhere gives a table or a DiskwrightError', (label, cut) => {
    const base = label === 'dos' ? DOS_BASE : GPT_BASE;
    const result = parseOrTypedError(base.subarray(0, cut % (base.length + 1)));
    if (result !== 'error' && cut % (base.length + 1) < 512) throw new Error('a table from less than one sector');
  });
});

/** Non-overlapping dos layouts: up to 3 primaries, optionally an extended with up to 6 logicals. */
const dosLayout = fc
  .record({
    diskId: fc.nat({ max: 0xffffffff }),
    primaries: fc.array(fc.record({ gap: fc.integer({ min: 1, max: 50 }), size: fc.integer({ min: 1, max: 80 }), type: fc.constantFrom(0x83, 0x82, 0x0c, 0x07, 0xef, 0x8e), bootable: fc.boolean() }), { maxLength: 3 }),
    logicals: fc.array(fc.record({ gap: fc.integer({ min: 1, max: 20 }), size: fc.integer({ min: 1, max: 60 }), type: fc.constantFrom(0x83, 0x82, 0x8e, 0xfd), bootable: fc.boolean() }), { maxLength: 6 }),
    extType: fc.constantFrom(0x05, 0x0f, 0x85),
    withExtended: fc.boolean(),
  })
  .map((spec) => {
    let cursor = 1n;
    const primaries = spec.primaries.map((p) => {
      const start = cursor + BigInt(p.gap);
      cursor = start + BigInt(p.size);
      return { start, size: BigInt(p.size), type: p.type, bootable: p.bootable };
    });
    if (!spec.withExtended) return { diskId: spec.diskId, primaries, logicals: [], sectors: Number(cursor) + 10 };
    const extStart = cursor + 5n;
    let at = extStart;
    const logicals = spec.logicals.map((l) => {
      const ebr = at;
      const start = ebr + BigInt(l.gap);
      at = start + BigInt(l.size);
      return { ebr, start, size: BigInt(l.size), type: l.type, bootable: l.bootable };
    });
    const extended = { start: extStart, size: at - extStart + 3n, type: spec.extType, bootable: false };
    return { diskId: spec.diskId, primaries: [...primaries, extended], logicals, sectors: Number(at) + 10 };
  });

describe('encode/parse round trips', () => {
  test.prop([dosLayout], { numRuns: 200 })('a dos layout with an EBR chain reads back as written', (layout) => {
    const table = parsePartitionTable(dosImage(layout.sectors, layout));
    expect(table.warnings).toEqual([]);
    expect(table.id).toBe(`0x${layout.diskId.toString(16).padStart(8, '0')}`);
    const expected = [
      ...layout.primaries.map((p, i) => [i + 1, p.start, p.size, p.type.toString(16), p.bootable]),
      ...layout.logicals.map((l, i) => [i + 5, l.start, l.size, l.type.toString(16), l.bootable]),
    ];
    expect(table.partitions.map((p) => [p.number, p.start, p.size, p.type, p.bootable])).toEqual(expected);
  });

  const guid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
    const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  });
  const name = fc.array(fc.constantFrom('a', 'Z', '0', ' ', 'ü', 'ß', '😀', '"', '\\', '/'), { maxLength: 18 }).map((c) => c.join(''));
  const gptSpec = fc.uniqueArray(
    fc.record({ index: fc.integer({ min: 1, max: 128 }), type: guid.filter((g) => g !== '00000000-0000-0000-0000-000000000000'), unique: guid, attributes: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), name, size: fc.integer({ min: 1, max: 50 }) }),
    { selector: (e) => e.index, maxLength: 12 },
  );

  test.prop([guid, gptSpec, fc.constantFrom(512, 4096)], { numRuns: 100 })('a GPT layout reads back as written, in slot order', (diskGuid, specs, sectorSize) => {
    let cursor = 34n;
    const partitions = specs.map((s) => {
      const firstLba = cursor + 1n;
      cursor = firstLba + BigInt(s.size) - 1n;
      return { index: s.index, typeGuid: s.type, uniqueGuid: s.unique, firstLba, lastLba: cursor, attributes: s.attributes, name: s.name };
    });
    const sectors = Number(cursor) + 40;
    const table = parsePartitionTable(gptImage({ diskGuid, sectorSize, firstUsableLba: 34n, partitions }, sectors));
    expect(table.sectorSize).toBe(sectorSize);
    expect(table.id).toBe(diskGuid);
    expect(table.warnings).toEqual([]);
    const sorted = [...partitions].sort((a, b) => a.index - b.index);
    expect(table.partitions.map((p) => [p.number, p.type, p.uuid, p.start, p.size, p.attributes, p.name ?? ''])).toEqual(
      sorted.map((e) => [e.index, e.typeGuid, e.uniqueGuid, e.firstLba, e.lastLba - e.firstLba + 1n, e.attributes, e.name]),
    );
  });
});
