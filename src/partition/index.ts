export type * from './types.js';
export { readPartitionTable, parsePartitionTable, getPartition, partitionByteRange } from './table.js';
