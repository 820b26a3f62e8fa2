import { open } from 'node:fs/promises';
import { DiskwrightError } from '../errors.js';
import { encodeDosTable, type DosLayout } from '../partition/index.js';

/**
 * A small disk laid out like the article's seed VM: p1 type 83 (bootable) at sector 2048 holding the
 * root filesystem, then an extended partition with one logical swap partition at the end.
 */
export interface SeedLayout {
  readonly layout: DosLayout;
  readonly diskBytes: number;
  /** Byte offset and length of partition 1 (the root filesystem). */
  readonly rootOffset: number;
  readonly rootBytes: number;
  /** Byte offset and length of partition 5 (swap). */
  readonly swapOffset: number;
  readonly swapBytes: number;
}

const SECTOR = 512;
const ALIGN_SECTORS = 2048;
/** The disk identifier the demo writes (fixed: the demo is deterministic). */
export const SEED_DISK_ID = 0x2013_0b0b;

/** Lays out a seed-like disk for a root filesystem of `rootBytes` and a swap of `swapBytes` (both MiB multiples). */
export function seedLayout(rootBytes: number, swapBytes = 16 * 1024 * 1024): SeedLayout {
  const mib = 1024 * 1024;
  if (!Number.isSafeInteger(rootBytes) || rootBytes <= 0 || rootBytes % mib !== 0) throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected the root size to be a positive multiple of 1 MiB, got \`${rootBytes}\``);
  if (!Number.isSafeInteger(swapBytes) || swapBytes <= 0 || swapBytes % mib !== 0) throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected the swap size to be a positive multiple of 1 MiB, got \`${swapBytes}\``);
  const rootStart = ALIGN_SECTORS;
  const rootSectors = rootBytes / SECTOR;
  const extStart = rootStart + rootSectors;
  const swapStart = extStart + ALIGN_SECTORS;
  const swapSectors = swapBytes / SECTOR;
  const extSectors = ALIGN_SECTORS + swapSectors;
  const layout: DosLayout = {
    diskId: SEED_DISK_ID,
    primaries: [
      { start: BigInt(rootStart), size: BigInt(rootSectors), type: 0x83, bootable: true },
      { start: BigInt(extStart), size: BigInt(extSectors), type: 0x05 },
    ],
    logicals: [{ ebr: BigInt(extStart), start: BigInt(swapStart), size: BigInt(swapSectors), type: 0x82 }],
  };
  return {
    layout,
    diskBytes: (extStart + extSectors) * SECTOR,
    rootOffset: rootStart * SECTOR,
    rootBytes,
    swapOffset: swapStart * SECTOR,
    swapBytes,
  };
}

/** Linux swap header (v1): page size 4096, "SWAPSPACE2" at the end of the first page (see mkswap.c). */
export function encodeSwapHeader(swapBytes: number, uuid: Uint8Array = new Uint8Array(16)): Uint8Array {
  const page = 4096;
  const header = new Uint8Array(page);
  const view = new DataView(header.buffer);
  view.setUint32(1024, 1, true); // version
  view.setUint32(1028, Math.floor(swapBytes / page) - 1, true); // last_page
  view.setUint32(1032, 0, true); // nr_badpages
  header.set(uuid.subarray(0, 16), 1036);
  header.set(new TextEncoder().encode('SWAPSPACE2'), page - 10);
  return header;
}

/** Writes the seed's MBR + EBR and the swap signature into an existing image file. */
export async function writeSeedTables(diskPath: string, seed: SeedLayout): Promise<void> {
  const handle = await open(diskPath, 'r+');
  try {
    for (const write of encodeDosTable(seed.layout)) await handle.write(write.bytes, 0, write.bytes.length, Number(write.offset));
    const swap = encodeSwapHeader(seed.swapBytes);
    await handle.write(swap, 0, swap.length, seed.swapOffset);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
