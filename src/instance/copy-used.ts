/**
 * The instance pipeline's copy (template → temp file, only the allocated ext blocks, grown to the
 * disk size) is io's {@link copyUsedBlocks}: one copy engine in the project. Re-exported here
 * under the names the instance API has always had.
 */
export { copyUsedBlocks, type UsedCopyOptions, type UsedCopySummary } from '../io/index.js';
