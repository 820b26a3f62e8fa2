export { makeFilesystemInPartition, withFill, type PartitionFsOptions, type PartitionFsResult, type PartitionFsType } from './partition-fs.js';
export { encodeSwapSignature, hasSwapSignature, SWAP_PAGE_SIZE, type SwapOptions } from './swap.js';
export { prepareFill, parseOwner, parseOwnerMap, detectCompression, type FillProgress, type OwnerOption, type PreparedFill, type ArchiveCompression } from './fill.js';
export { indexTar, encodePosixAcl, paxTimeNs, parsePaxRecords, type TarEntry, type TarIndex } from './tar-index.js';
export { buildDisk, parseFilesystemSpec, type DiskBuildOptions, type DiskBuildResult, type FilesystemSpec } from './disk-build.js';
