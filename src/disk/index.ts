export type { AllocationExtent, AllocationState, Disk, DiskFormat } from './types.js';
export { RawFileDisk } from './raw.js';
export { PartitionWindow } from './window.js';
export { Overlay, OVERLAY_BLOCK, DEFAULT_MEMORY_LIMIT, type ChangeRun, type OverlayOptions } from './overlay.js';
export {
  commitOverlay,
  rollBackInterruptedCommit,
  hasPendingRecord,
  recordPath,
  RECORD_SUFFIX,
  type CommitOptions,
  type CommitStep,
  type CommitSummary,
} from './commit.js';
export { openImage, type OpenImageOptions } from './open.js';
