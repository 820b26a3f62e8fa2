import { describe, expect, it } from 'vitest';
import { isDiskwrightError } from '../../../src/errors.js';
import { decodeMbrSector, encodeGuid, encodeMbrSector, formatGuid, parseMbr } from '../../../src/partition/index.js';
import { lbaToChs } from '../../../src/partition/mbr.js';

/** The MBR sfdisk wrote for the article layout (entries of `xxd -s 446 -l 66`). */
function articleMbr(): Uint8Array {
  const sector = new Uint8Array(512);
  const entries = [
    [0x80, 0x20, 0x21, 0x00, 0x83, 0x40, 0xdd, 0xe3, 0x00, 0x08, 0x00, 0x00, 0x00, 0xf0, 0xf3, 0x00],
    [0x00, 0x60, 0xfc, 0xe3, 0x05, 0xfe, 0xff, 0xff, 0xfe, 0xff, 0xf3, 0x00, 0x02, 0xf8, 0x0b, 0x00],
  ];
  entries.forEach((e, i) => sector.set(e, 446 + i * 16));
  sector.set([0xcd, 0xab, 0x34, 0x12], 440);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

describe('MBR sector codec', () => {
  it('decodes the four entries, boot flag and disk id of a real sfdisk-written MBR', () => {
    const mbr = parseMbr(articleMbr());
    expect(mbr.diskId).toBe(0x1234abcd);
    expect(mbr.entries[0]).toMatchObject({ bootIndicator: 0x80, type: 0x83, startLba: 2048, sectors: 15986688 });
    expect(mbr.entries[1]).toMatchObject({ bootIndicator: 0, type: 0x05, startLba: 15990782, sectors: 784386 });
    expect(mbr.entries[2]!.type).toBe(0);
  });

  it('re-encodes a decoded sector byte for byte', () => {
    const sector = articleMbr();
    sector.fill(0x90, 0, 440); // boot code must survive
    expect(encodeMbrSector(decodeMbrSector(sector), sector)).toEqual(sector);
  });

  it('computes CHS like sfdisk (255 heads, 63 sectors), saturating past cylinder 1023', () => {
    expect(lbaToChs(2048n)).toEqual([0x20, 0x21, 0x00]);
    expect(lbaToChs(15988735n)).toEqual([0x40, 0xdd, 0xe3]);
    expect(lbaToChs(15990782n)).toEqual([0x60, 0xfc, 0xe3]);
    expect(lbaToChs(16775167n)).toEqual([0xfe, 0xff, 0xff]);
  });

  it('rejects a sector without the 0x55AA signature', () => {
    const sector = articleMbr();
    sector[511] = 0;
    try {
      parseMbr(sector);
      throw new Error('no error');
    } catch (error) {
      expect(isDiskwrightError(error, 'E_BAD_SIGNATURE')).toBe(true);
    }
  });

  it('rejects a short sector with E_TRUNCATED', () => {
    expect(() => decodeMbrSector(new Uint8Array(511))).toThrow(expect.objectContaining({ code: 'E_TRUNCATED' }));
  });
});

describe('GUID text', () => {
  it('round-trips through the mixed-endian byte layout', () => {
    const bytes = encodeGuid('0fc63daf-8483-4772-8e79-3d69d8477de4');
    expect([...bytes.subarray(0, 8)]).toEqual([0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47]);
    expect(formatGuid(bytes)).toBe('0FC63DAF-8483-4772-8E79-3D69D8477DE4');
  });

  it('rejects malformed GUID text', () => {
    expect(() => encodeGuid('0FC63DAF-8483-4772-8E79')).toThrow(expect.objectContaining({ code: 'E_BAD_SIGNATURE' }));
  });
});
