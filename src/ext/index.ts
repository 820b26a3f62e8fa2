export type * from './types.js';
export { withFilesystem, locateFilesystem, type FilesystemLocation } from './with-filesystem.js';
export { normalizeImagePath } from './path.js';
export { recoverInterruptedCommit, undoLogPath } from './commit.js';
export { parseExtSuperblock, readExtGeometry, assertExtSupported, type ExtGeometry } from './superblock.js';
