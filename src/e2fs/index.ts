export {
  runE2fsTool,
  imageSpec,
  defaultE2fsEnv,
  wasmDistDir,
  closeE2fsPool,
  E2FS_TOOLS,
  type E2fsTool,
  type E2fsToolResult,
  type RunE2fsToolOptions,
} from './run.js';
export { E2fsWorkerPool, type HookFactory, type WorkerJob, type WorkerResult } from './pool.js';
export { DT, type Tree, type TreeStat, type TreeEntry, type TreeMap, type HookContext } from './tree.js';
export { checkFilesystem, fsckExitStatus, fsckArgs, FSCK_EXIT, type CheckMode, type CheckStatus, type CheckResult, type CheckFilesystemOptions } from './check.js';
export { growFilesystem, type GrowFilesystemOptions, type GrowResult } from './grow.js';
export { makeFilesystem, mke2fsArgs, type FilesystemType, type MakeFilesystemOptions, type MakeFilesystemResult } from './mkfs.js';
export { tuneFilesystem, type TuneFilesystemOptions, type TuneResult } from './tune.js';
export { dumpFilesystemHeader, parseDumpe2fsHeader, headerNeedsRecovery, type DumpHeaderOptions } from './dump.js';
export { findFilesystem, parsePartitionNumber, type FilesystemPlace } from './locate.js';
export { assertOpenableByE2fsprogs, startOpenCheck, openProblem, type PendingOpenCheck, type DumpOutput, type OpenCheckOptions } from './open-check.js';
export { resizeImage, maxPartitionSectors, assertResizable, type ResizeImageOptions, type ResizeImageResult } from './resize-image.js';
export { e2fsckProgressFilter, resize2fsProgressReader, e2fsckPassAt, E2FSCK_PASSES, RESIZE2FS_PASSES, type PassProgress, type PassCallback, type OutputFilter } from './progress.js';
