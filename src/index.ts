/** diskwright public API: everything the CLI uses is exported here. Each area owns its barrel. */
export * from './errors.js';
export * from './bytes/index.js';
export * from './partition/index.js';
export * from './io/index.js';
export * from './disk/index.js';
export * from './ext/index.js';
export * from './extmeta/index.js';
export * from './e2fs/index.js';
export * from './template/index.js';
export * from './instance/index.js';
export * from './virt/index.js';
export * from './demo/index.js';
export * from './build/index.js';
