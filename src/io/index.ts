export { withAtomicOutput, withAtomicPath, tempPathBeside, type AtomicOutputOptions } from './atomic.js';
