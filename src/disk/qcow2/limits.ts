/**
 * Named limits for everything a qcow2 file says about itself. Values follow QEMU's own
 * (block/qcow2.h) so that an image QEMU opens, diskwright opens too, and nothing larger is
 * trusted as a size or a loop bound.
 */

/** 512 B clusters (qcow2.txt: "Must not be less than 9"). */
export const MIN_CLUSTER_BITS = 9;
/** 2 MiB clusters: QEMU's implementation limit. */
export const MAX_CLUSTER_BITS = 21;
/** QCOW_MAX_L1_SIZE: the L1 table of one image is at most 32 MiB (4 Mi entries). */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** QCOW_MAX_REFTABLE_SIZE: the refcount table is at most 8 MiB. */
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
/** qcow2.txt: "Must not be longer than 1023 bytes". */
export const MAX_BACKING_NAME = 1023;
/** Backing chains deeper than this are refused (QEMU has no fixed limit; real chains are short). */
export const MAX_BACKING_DEPTH = 64;
/** Host offsets are 56-bit in L1/L2 entries (bits 9–55). */
export const MAX_HOST_OFFSET = 2 ** 56;
/** Bytes of L2 tables kept in memory before clean ones are dropped. */
export const L2_CACHE_BYTES = 32 * 1024 * 1024;
/** Bytes of refcount blocks kept in memory before clean ones are dropped. */
export const REFBLOCK_CACHE_BYTES = 8 * 1024 * 1024;
