export { readSuperblock, readUsedBlockRanges, type ExtLocation, type ByteRange } from './read.js';
export { parseSuperblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, EXT_MAGIC, type Superblock } from './superblock.js';
export { featureNames, COMPAT, INCOMPAT, RO_COMPAT } from './features.js';
export { groupHasSuper, parseGroupDescriptor, runsFromBitmap, MAX_GROUPS, type GroupDescriptor, type BlockRun } from './groups.js';
