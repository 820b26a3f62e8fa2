import { DiskwrightError } from '../errors.js';

/**
 * A small disk laid out like the article's seed VM: p1 type 83 (bootable) at sector 2048 holding the
 * root filesystem, then an extended partition with one logical swap partition at the end. Built
 * with the public commands: the layout is an sfdisk script for `diskwright partition` /
 * `disk build`, which place it exactly where sfdisk would.
 */
export interface SeedLayout {
  /** The sfdisk script of the layout. */
  readonly script: string;
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
  const rootSectors = rootBytes / SECTOR;
  // sfdisk's defaults: the extended partition starts at the next MiB, its first logical one MiB in.
  const extStart = ALIGN_SECTORS + rootSectors;
  const swapStart = extStart + ALIGN_SECTORS;
  const diskSectors = swapStart + swapBytes / SECTOR;
  const script = [
    'label: dos',
    `label-id: 0x${SEED_DISK_ID.toString(16).padStart(8, '0')}`,
    `start=${ALIGN_SECTORS}, size=${rootSectors}, type=83, bootable`,
    'type=5',
    'type=82',
    '',
  ].join('\n');
  return { script, diskBytes: diskSectors * SECTOR, rootOffset: ALIGN_SECTORS * SECTOR, rootBytes, swapOffset: swapStart * SECTOR, swapBytes };
}
