export { withAtomicOutput, withAtomicPath, tempPathBeside, type AtomicOutputOptions } from './atomic.js';
export type { Progress, ProgressCallback } from './progress.js';
