/** Small in-memory images built with our own encoders (and by hand) for partition tests. */
import { applySectorWrites, encodeDosTable, encodeGpt, type DosLayout, type GptEntry, type GptLayout } from '../../../src/partition/index.js';

export const LINUX_FS = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
export const LINUX_SWAP = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F';
export const EFI_SYSTEM = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

export function dosImage(sectors: number, layout: DosLayout): Uint8Array {
  return applySectorWrites(new Uint8Array(sectors * 512), encodeDosTable(layout));
}

export function gptImage(layout: Omit<GptLayout, 'diskSectors'> & { diskSectors?: bigint }, sectors = 4096): Uint8Array {
  const ss = layout.sectorSize ?? 512;
  return applySectorWrites(new Uint8Array(sectors * ss), encodeGpt({ diskSectors: BigInt(sectors), ...layout }));
}

export function entry(index: number, firstLba: bigint, lastLba: bigint, extra: Partial<GptEntry> = {}): GptEntry {
  return {
    index,
    typeGuid: LINUX_FS,
    uniqueGuid: `00000000-0000-0000-0000-${index.toString(16).toUpperCase().padStart(12, '0')}`,
    firstLba,
    lastLba,
    attributes: 0n,
    name: '',
    ...extra,
  };
}

/** A 2 MiB disk: p1 83 bootable, p2 extended with logicals 5 (82), 6 (83), 7 (8e). */
export function articleLikeDos(): Uint8Array {
  return dosImage(4096, {
    diskId: 0x1234abcd,
    primaries: [
      { start: 64n, size: 1000n, type: 0x83, bootable: true },
      { start: 2000n, size: 2096n, type: 0x05 },
    ],
    logicals: [
      { ebr: 2000n, start: 2002n, size: 500n, type: 0x82 },
      { ebr: 2600n, start: 2602n, size: 400n, type: 0x83 },
      { ebr: 3100n, start: 3102n, size: 994n, type: 0x8e },
    ],
  });
}

export function u32(image: Uint8Array, offset: number, value: number): void {
  new DataView(image.buffer, image.byteOffset).setUint32(offset, value, true);
}
