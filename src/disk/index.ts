export type { AllocationExtent, AllocationState, Disk, DiskFormat } from './types.js';
export { RawFileDisk } from './raw.js';
export { PartitionWindow } from './window.js';
export { Overlay, OVERLAY_BLOCK, DEFAULT_MEMORY_LIMIT, type ChangeRun, type OverlayOptions } from './overlay.js';
export {
  commitOverlay,
  commitOverlayInterruptibly,
  rollBackInterruptedCommit,
  settleCompletedCommit,
  prepareRecord,
  PREPARED_RECORD_BYTES,
  type PreparedRecord,
  hasPendingRecord,
  recordPath,
  RECORD_SUFFIX,
  type CommitOptions,
  type CommitStep,
  type CommitSummary,
} from './commit.js';
export { FreeBlockWriter, type ImageRange } from './free-writes.js';
export { openImage, openResolved, resolveFormat, type FormatSource, type OpenImageOptions, type ResolvedFormat } from './open.js';
export { recordFormat, FORMAT_XATTR } from './format-record.js';
export { Qcow2Disk, openQcow2Chain, createQcow2, hasQcow2Magic, type Qcow2Facts } from './qcow2/index.js';
export { lockImage, withImageLock, realImagePath, type ImageAccess, type ImageLock, type LockOptions } from './lock.js';
export { withImage, recoverImage, pendingCommitError, type WithImageOptions, type ImageContext } from './with-image.js';
export { findHolders, type FileHolder } from './holders.js';
/** The directory fsync every writer uses (kept here too: the first version exported it from disk). */
export { fsyncDirOf } from '../io/fsync-dir.js';
