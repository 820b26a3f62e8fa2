/**
 * The partition-table data model shared by the MBR and GPT parsers, the CLI and extract.
 * Sector numbers are bigint (64-bit LBAs); byte positions derived from them are bigint too.
 */

export type TableLabel = 'dos' | 'gpt';

export interface Partition {
  /** Linux numbering: 1–4 primary, 5+ logical (dos); 1..N in entry order (gpt). */
  readonly number: number;
  /** First sector (512-byte units for dos; logical sector size for gpt). */
  readonly start: bigint;
  /** Length in sectors. */
  readonly size: bigint;
  /** dos: the type byte as sfdisk prints it in JSON (`"83"`, `"5"`); gpt: type GUID upper-case. */
  readonly type: string;
  readonly bootable: boolean;
  /** gpt: unique partition GUID (upper-case). dos: absent (sfdisk 2.38 prints no uuid for dos). */
  readonly uuid?: string;
  /** gpt: partition name (UTF-16LE decoded). */
  readonly name?: string;
  /** gpt: attribute bits. */
  readonly attributes?: bigint;
  /** dos: 'primary' | 'extended' | 'logical'; gpt: 'gpt'. */
  readonly kind: 'primary' | 'extended' | 'logical' | 'gpt';
  /** dos logical only: absolute LBA of the EBR that describes this partition. */
  readonly ebr?: bigint;
}

export interface PartitionTable {
  readonly label: TableLabel;
  /** dos: `0x1234abcd`; gpt: disk GUID upper-case. */
  readonly id: string;
  readonly sectorSize: number;
  /** Size of the image in bytes. */
  readonly diskSize: bigint;
  readonly partitions: readonly Partition[];
  /** Non-fatal problems found (overlaps, damaged backup GPT, …): reported, not thrown. */
  readonly warnings: readonly string[];
  /** gpt only */
  readonly firstUsableLba?: bigint;
  readonly lastUsableLba?: bigint;
  /** gpt only: slots in the partition entry array (usually 128). */
  readonly entryCount?: number;
}
