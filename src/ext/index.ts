export type * from './types.js';
export { withFilesystem, locateFilesystem, type FilesystemLocation } from './with-filesystem.js';
export { normalizeImagePath } from './path.js';
/** The names the first version exported (the record beside the image is still `IMAGE.diskwright-undo`). */
export { recoverImage as recoverInterruptedCommit, recordPath as undoLogPath } from '../disk/index.js';
export { parseExtSuperblock, readExtGeometry, assertExtSupported, type ExtGeometry } from './superblock.js';
