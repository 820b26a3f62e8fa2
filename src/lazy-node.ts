// Node built-ins that only some runs need, loaded at their first use: a static import of one costs
// every start of every command that bundles it (node:worker_threads and node:zlib ~2 ms each
// here), although convert and extract need them only for compressed clusters, -c and commits.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** node:zlib on first use. */
export const lazyZlib = (): typeof import('node:zlib') => require('node:zlib') as typeof import('node:zlib');
/** node:worker_threads on first use. */
export const lazyWorkerThreads = (): typeof import('node:worker_threads') => require('node:worker_threads') as typeof import('node:worker_threads');
/** node:os on first use. */
export const lazyOs = (): typeof import('node:os') => require('node:os') as typeof import('node:os');
