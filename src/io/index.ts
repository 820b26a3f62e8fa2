export { withAtomicOutput, withAtomicPath, assertOutputWritable, tempPathBeside, type AtomicOutputOptions } from './atomic.js';
export type { Progress, ProgressCallback } from './progress.js';
export { createImage, type CreateImageOptions } from './create.js';
export {
  copyRange,
  sparseCopyFile,
  DEFAULT_CHUNK_BYTES,
  type CopySummary,
  type CopyOptions,
  type CopyRangeOptions,
  type SparseCopyOptions,
} from './copy.js';
export { isAllZero, dataRuns, HOLE_BLOCK, type DataRun } from './zero.js';
export { normalizeExtents, clipExtents, alignExtents, extentBytes, type Extent } from './extents.js';
export { extractPartition, type ExtractOptions, type ExtractSummary } from './extract.js';
export { copyUsedBlocks, type UsedCopyOptions, type UsedCopySummary } from './used-copy.js';
