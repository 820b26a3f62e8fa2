/**
 * ext2/3/4 feature bits and the names `dumpe2fs` prints for them (e2fsprogs lib/e2p/feature.c;
 * bits: https://www.kernel.org/doc/html/latest/filesystems/ext4/globals.html#super-block).
 */

export const COMPAT = {
  dir_prealloc: 0x0001,
  imagic_inodes: 0x0002,
  has_journal: 0x0004,
  ext_attr: 0x0008,
  resize_inode: 0x0010,
  dir_index: 0x0020,
  lazy_bg: 0x0040,
  snapshot_bitmap: 0x0100,
  sparse_super2: 0x0200,
  fast_commit: 0x0400,
  stable_inodes: 0x0800,
  orphan_file: 0x1000,
} as const;

export const INCOMPAT = {
  compression: 0x0001,
  filetype: 0x0002,
  needs_recovery: 0x0004,
  journal_dev: 0x0008,
  meta_bg: 0x0010,
  extent: 0x0040,
  '64bit': 0x0080,
  mmp: 0x0100,
  flex_bg: 0x0200,
  ea_inode: 0x0400,
  dirdata: 0x1000,
  metadata_csum_seed: 0x2000,
  large_dir: 0x4000,
  inline_data: 0x8000,
  encrypt: 0x10000,
  casefold: 0x20000,
} as const;

export const RO_COMPAT = {
  sparse_super: 0x0001,
  large_file: 0x0002,
  huge_file: 0x0008,
  uninit_bg: 0x0010,
  dir_nlink: 0x0020,
  extra_isize: 0x0040,
  snapshot: 0x0080,
  quota: 0x0100,
  bigalloc: 0x0200,
  metadata_csum: 0x0400,
  replica: 0x0800,
  read_only: 0x1000,
  project: 0x2000,
  shared_blocks: 0x4000,
  verity: 0x8000,
  orphan_present: 0x10000,
} as const;

type FeatureTable = Readonly<Record<string, number>>;

/** Which of the three feature words: dumpe2fs prints compat, then incompat, then ro_compat. */
const WORDS: readonly { table: FeatureTable; letter: 'C' | 'I' | 'R' }[] = [
  { table: COMPAT, letter: 'C' },
  { table: INCOMPAT, letter: 'I' },
  { table: RO_COMPAT, letter: 'R' },
];

function nameOf(table: FeatureTable, bit: number): string | undefined {
  for (const [name, value] of Object.entries(table)) if (value === bit) return name;
  return undefined;
}

/**
 * Feature names in dumpe2fs order (bit order within compat, incompat, ro_compat); bits without a
 * name print like e2p does: `FEATURE_I31`.
 */
export function featureNames(compat: number, incompat: number, roCompat: number): string[] {
  const names: string[] = [];
  [compat, incompat, roCompat].forEach((word, i) => {
    const { table, letter } = WORDS[i]!;
    const bits = word >>> 0;
    for (let bit = 0; bit < 32; bit++) {
      const mask = 2 ** bit;
      if (((bits >>> bit) & 1) === 1) names.push(nameOf(table, mask) ?? `FEATURE_${letter}${bit}`);
    }
  });
  return names;
}

/** Incompat bits this parser does not know (a kernel would refuse to mount with them). */
export function unknownIncompat(incompat: number): string[] {
  const known = Object.values(INCOMPAT).reduce((a, b) => a | b, 0);
  return featureNames(0, (incompat & ~known) >>> 0, 0);
}
