import { open, stat } from 'node:fs/promises';
import { DiskwrightError } from '../errors.js';
import { encodeDosTable, type DosLayout } from '../partition/index.js';
import { dataRuns } from '../io/index.js';
import type { ProgressCallback } from '../io/progress.js';

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

/** Chunk size for {@link placeImage}. */
const PLACE_CHUNK = 1024 * 1024;

/**
 * Writes the whole of `source` (a filesystem image) into `disk` at byte `offset` — a partition —
 * skipping all-zero 4 KiB blocks, so a fresh sparse disk stays sparse. The target range must lie
 * inside the disk (its size is never changed).
 */
export async function placeImage(source: string, disk: string, offset: number, options: { maxBytes?: number; onProgress?: ProgressCallback; signal?: AbortSignal } = {}): Promise<number> {
  const size = (await stat(source)).size;
  const diskSize = (await stat(disk)).size;
  const limit = options.maxBytes ?? diskSize - offset;
  if (!Number.isSafeInteger(offset) || offset < 0 || size > limit || offset + size > diskSize) {
    throw new DiskwrightError('E_OUT_OF_RANGE', `${source} (${size} bytes) does not fit at offset ${offset} of ${disk} (${diskSize} bytes, room ${limit})`, { path: source });
  }
  const src = await open(source, 'r');
  const dst = await open(disk, 'r+');
  try {
    const buffer = Buffer.alloc(PLACE_CHUNK);
    for (let at = 0; at < size; at += PLACE_CHUNK) {
      if (options.signal?.aborted) throw new DiskwrightError('E_ABORTED', 'operation aborted');
      const { bytesRead } = await src.read(buffer, 0, Math.min(PLACE_CHUNK, size - at), at);
      for (const run of dataRuns(buffer, bytesRead)) {
        await dst.write(buffer, run.start, run.length, offset + at + run.start);
      }
      options.onProgress?.({ bytes: at + bytesRead, total: size });
    }
    await dst.sync();
  } finally {
    await src.close();
    await dst.close();
  }
  return size;
}
