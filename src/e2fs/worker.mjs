// Worker thread that runs one e2fsprogs WebAssembly tool at a time (plain .mjs so it loads the same
// way from src/ under vitest and from dist/). Compiled modules are cached for the worker's life;
// every run gets a fresh instance, so no C global state leaks between runs.
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
/** Initial heap of every run (bytes; virtual until touched). */
const INITIAL_MEMORY = 128 * 1024 * 1024;
/** @type {Map<string, { factory: Function, module: WebAssembly.Module }>} */
const cache = new Map();

function load(wasmDir, tool) {
  const key = join(wasmDir, tool);
  let entry = cache.get(key);
  if (!entry) {
    const factory = require(`${key}.cjs`);
    const module = new WebAssembly.Module(readFileSync(`${key}.wasm`));
    entry = { factory, module };
    cache.set(key, entry);
  }
  return entry;
}

/** Mirrors the host fds a run holds into shared memory so the pool can close them after terminate(). */
function fdTracker(shared) {
  const slots = shared ? new Int32Array(shared) : new Int32Array(0);
  return {
    open(nfd) {
      for (let i = 0; i < slots.length; i++) if (Atomics.compareExchange(slots, i, 0, nfd + 1) === 0) return;
    },
    close(nfd) {
      for (let i = 0; i < slots.length; i++) if (Atomics.compareExchange(slots, i, nfd + 1, 0) === nfd + 1) return;
    },
    /** Closes anything the run left open (trap 10: a run that aborts leaves its image fd open). */
    closeLeftovers() {
      for (let i = 0; i < slots.length; i++) {
        const value = Atomics.exchange(slots, i, 0);
        if (value > 0) {
          try { closeSync(value - 1); } catch { /* already closed */ }
        }
      }
    },
  };
}

function run(job) {
  const { factory, module } = load(job.wasmDir, job.tool);
  const stdout = [];
  const stderr = [];
  const fds = fdTracker(job.fdSlots);
  let exitCode;
  let failure;
  const emit = (fd, bytes) => {
    (fd === 1 ? stdout : stderr).push(bytes);
    if (job.stream) parentPort.postMessage({ type: 'output', id: job.id, fd, bytes });
  };
  const text = (fd) => (line) => emit(fd, Buffer.from(`${line}\n`));
  const Module = {
    // Growing wasm memory copies the heap each time (it doubled e2fsck's time on 50k inodes);
    // start large instead — untouched pages cost nothing.
    INITIAL_MEMORY: INITIAL_MEMORY,
    arguments: job.argv,
    thisProgram: job.tool,
    print: text(1),
    printErr: text(2),
    instantiateWasm(imports, receiveInstance) {
      const instance = new WebAssembly.Instance(module, imports);
      receiveInstance(instance, module);
      return instance.exports;
    },
    onExit(code) { exitCode = code; },
    quit(status, toThrow) {
      if (exitCode === undefined) exitCode = status;
      throw toThrow;
    },
    dw: {
      env: job.env,
      tty: [false, false, false],
      sparse: job.sparse !== false,
      cwd: job.cwd,
      stdin: job.stdin ? new Uint8Array(job.stdin) : new Uint8Array(0),
      onOutput: emit,
      onOpen: (nfd) => fds.open(nfd),
      onClose: (nfd) => fds.close(nfd),
    },
  };
  try {
    factory(Module);
  } catch (error) {
    if (!(error && error.name === 'ExitStatus')) failure = error;
  }
  // The factory's ready promise rejects on abort; the failure is reported below instead.
  if (Module.ready && typeof Module.ready.catch === 'function') Module.ready.catch(() => {});
  try { Module.dwCloseAll?.(); } catch { /* best effort */ }
  fds.closeLeftovers();
  const message = failure ? String(failure && failure.stack ? failure.stack : failure) : undefined;
  return {
    type: 'done',
    id: job.id,
    exitCode: failure ? undefined : exitCode ?? 0,
    failure: message,
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr),
  };
}

parentPort.on('message', (job) => {
  let result;
  try {
    result = run(job);
  } catch (error) {
    result = { type: 'done', id: job.id, failure: String(error && error.stack ? error.stack : error), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  }
  parentPort.postMessage(result);
});
