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
export { E2fsWorkerPool } from './pool.js';
