// Worker thread that runs one e2fsprogs WebAssembly tool at a time (plain .mjs so it loads the same
// way from src/ under vitest and from dist/). Compiled modules are cached for the worker's life;
// every run gets a fresh instance, so no C global state leaks between runs.
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFileSync, closeSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { constants as osConstants } from 'node:os';

const require = createRequire(import.meta.url);
/** Initial heap of a run unless the job gives one (bytes; virtual until touched). */
const INITIAL_MEMORY = 128 * 1024 * 1024;
/** Smallest initial heap a job may ask for (the tools are linked for 16 MiB). */
const MIN_INITIAL_MEMORY = 16 * 1024 * 1024;
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

/** Imported hook factory modules (diskFactory / treeFactory), by URL, for the worker's life. */
const factories = new Map();

async function importFactory(spec) {
  const url = spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href;
  let loaded = factories.get(url);
  if (!loaded) {
    loaded = import(url);
    factories.set(url, loaded);
  }
  return loaded;
}

/** Linux errno numbers → names, to turn the xattr addon's "(os error N)" into emscripten errnos. */
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, number]) => [number, name]));

let xattrAddon;
/**
 * Host extended attributes for mke2fs -d: Node has no xattr API, so the @napi-rs/xattr addon
 * (prebuilt N-API binaries; its calls are the no-follow l*xattr ones) does it. Missing addon →
 * undefined, and the runtime answers ENOSYS (loud) instead of silently dropping attributes.
 */
function hostXattr() {
  if (xattrAddon === undefined) {
    try {
      xattrAddon = require('@napi-rs/xattr');
    } catch {
      xattrAddon = null;
    }
  }
  if (!xattrAddon) return undefined;
  const call = (fn) => {
    try {
      return fn();
    } catch (error) {
      const match = /\(os error (\d+)\)/.exec(String(error && error.message));
      const code = match ? ERRNO_NAMES.get(Number(match[1])) : undefined;
      throw Object.assign(new Error(String(error && error.message)), { code: code ?? 'EIO' });
    }
  };
  const target = (path, follow) => (follow ? call(() => realpathSync(path)) : path);
  return {
    list: (path, follow) => call(() => xattrAddon.listAttributesSync(target(path, follow))),
    get: (path, name, follow) => call(() => xattrAddon.getAttributeSync(target(path, follow), name)),
  };
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

/**
 * Builds the Disk and Tree maps a job asks for (`diskFactory` / `treeFactory`: an ESM module and
 * structured-clonable args). The factory gets the fd tracker so a terminated run's fds close too.
 */
async function createHooks(job, fds) {
  const context = { trackFd: (nfd) => fds.open(nfd), untrackFd: (nfd) => fds.close(nfd) };
  const hooks = { disks: undefined, trees: undefined, diskModule: undefined };
  if (job.diskFactory) {
    const mod = await importFactory(job.diskFactory);
    if (typeof mod.createDisks !== 'function') throw new Error(`diskFactory ${job.diskFactory.module} exports no createDisks()`);
    hooks.diskModule = mod;
    hooks.disks = await mod.createDisks(job.diskFactory.args, context);
  }
  if (job.treeFactory) {
    const mod = await importFactory(job.treeFactory);
    if (typeof mod.createTrees !== 'function') throw new Error(`treeFactory ${job.treeFactory.module} exports no createTrees()`);
    hooks.trees = await mod.createTrees(job.treeFactory.args, context);
  }
  return hooks;
}

/** Runs the factory's afterRun hook (its result goes back as `diskResult`), then closes every Disk. */
async function finishHooks(hooks, result) {
  try {
    if (hooks.disks && typeof hooks.diskModule?.afterRun === 'function') {
      const diskResult = await hooks.diskModule.afterRun(hooks.disks, { exitCode: result.exitCode, failure: result.failure });
      if (diskResult !== undefined) result.diskResult = diskResult;
    }
  } finally {
    for (const disk of Object.values(hooks.disks ?? {})) {
      try { disk.close(); } catch (error) { result.failure ??= `closing a Disk failed: ${error && error.stack ? error.stack : error}`; }
    }
    for (const tree of Object.values(hooks.trees ?? {})) {
      try { tree.close?.(); } catch { /* trees hold no writes */ }
    }
  }
}

async function runJob(job) {
  const fds = fdTracker(job.fdSlots);
  let hooks = { disks: undefined, trees: undefined, diskModule: undefined };
  let result;
  try {
    hooks = await createHooks(job, fds);
    result = run(job, fds, hooks);
  } catch (error) {
    result = failed(job, error);
  }
  try {
    await finishHooks(hooks, result);
  } catch (error) {
    result = { ...result, failure: result.failure ?? `afterRun failed: ${error && error.stack ? error.stack : error}` };
  }
  return result;
}

function failed(job, error) {
  return { type: 'done', id: job.id, failure: String(error && error.stack ? error.stack : error), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
}

/** The code, message and fields of a hook's DiskwrightError (a string `E_…` code), to rebuild it. */
function hookFault(error) {
  if (!error || typeof error.code !== 'string' || !error.code.startsWith('E_')) return undefined;
  const fault = { code: error.code, message: String(error.message) };
  for (const key of ['hint', 'path', 'offset']) {
    if (typeof error[key] === 'string' || typeof error[key] === 'number' || typeof error[key] === 'bigint') fault[key] = error[key];
  }
  return fault;
}

function run(job, fds, hooks) {
  const { factory, module } = load(job.wasmDir, job.tool);
  const stdout = [];
  const stderr = [];
  let exitCode;
  let failure;
  let hookError;
  const emit = (fd, bytes) => {
    (fd === 1 ? stdout : stderr).push(bytes);
    if (job.stream) parentPort.postMessage({ type: 'output', id: job.id, fd, bytes });
  };
  const text = (fd) => (line) => emit(fd, Buffer.from(`${line}\n`));
  const Module = {
    // Growing wasm memory copies the heap each time (it doubled e2fsck's time on 50k inodes);
    // start large instead — untouched pages cost nothing.
    // A small run asks for less: setting up and releasing a 128 MiB heap costs more than the run
    // itself (a five-file debugfs batch: ~10 ms at 16 MiB, ~30 ms at 128 MiB, worker CPU).
    INITIAL_MEMORY: Number.isSafeInteger(job.initialMemory) && job.initialMemory >= MIN_INITIAL_MEMORY ? Math.ceil(job.initialMemory / 65536) * 65536 : INITIAL_MEMORY,
    arguments: job.argv,
    // argv[0] as the caller gave it (the e2fsprogs suite expects `../e2fsck/e2fsck: …`).
    thisProgram: job.argv0 ?? job.tool,
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
      disks: hooks.disks,
      trees: hooks.trees,
      hostXattr: hostXattr(),
      onHookError: (error) => { hookError ??= error; },
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
    // A Disk/Tree method threw: the tool saw EIO; the first error says why.
    hookError: hookError ? String(hookError && hookError.stack ? hookError.stack : hookError) : undefined,
    // A diskwright error from the Disk (a qcow2 entry past the end of the file, …) keeps its code and words.
    hookFault: hookFault(hookError),
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr),
  };
}

/** One run on the importing thread (src/e2fs/in-thread.ts: short header reads need no worker). */
export { runJob };

/**
 * Serves hook factory `url` from a module the importing thread already has (in-thread.ts: the CLI
 * bundle's own disk factory) instead of importing the unbundled copy and its ~80 modules.
 */
export function provideFactory(url, module) {
  factories.set(url, Promise.resolve(module));
}

// Jobs run one at a time (the pool sends the next only after `done`), so a promise chain suffices.
let queue = Promise.resolve();
parentPort?.on('message', (job) => {
  queue = queue.then(async () => {
    let result;
    try {
      result = await runJob(job);
    } catch (error) {
      result = failed(job, error);
    }
    try {
      parentPort.postMessage(result);
    } catch (error) {
      // A diskResult that is not structured-clonable.
      parentPort.postMessage({ ...failed(job, error), stdout: result.stdout, stderr: result.stderr });
    }
  });
});
