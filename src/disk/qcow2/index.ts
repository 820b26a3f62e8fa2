/** qcow2 as a Disk (issue 10): read, write, create, and the trusted backing chain. */
export { Qcow2Disk, resolveBacking, type BackingRequest, type Qcow2Facts, type Qcow2OpenOptions } from './image.js';
export { openQcow2Chain, type ChainOptions, type RawOpener } from './chain.js';
export { createQcow2, clusterBitsOf, DEFAULT_CLUSTER_SIZE, type CreateQcow2Options } from './create.js';
export { hasQcow2Magic, parseQcow2Header, type Qcow2Header } from './header.js';
export { compressCluster } from './compress.js';
