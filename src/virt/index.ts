export * from './argv.js';
export * from './safe.js';
export * from './runner.js';
export * from './domains.js';
export * from './pools.js';
export * from './kvm.js';
