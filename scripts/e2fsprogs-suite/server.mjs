#!/usr/bin/env node
// Long-lived helper behind wrapper.c: serves every e2fsprogs tool call of a suite run from one Node
// process whose worker pool keeps the compiled WebAssembly modules, so a call costs an instance,
// not a Node start and a compile (~0.3 s each). Wire format: see wrapper.c.
//
//   node scripts/e2fsprogs-suite/server.mjs SOCKET [--workers N] [--stats FILE] [--timeout SECONDS]
//
// Prints "ready" on stdout once listening; on SIGTERM/SIGINT writes per-tool call counts and times
// to --stats and exits. Run after `npm run build` (imports ../../dist/index.js).
import { createServer } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { E2fsWorkerPool, E2FS_TOOLS, wasmDistDir } from '../../dist/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    workers: { type: 'string', default: '2' },
    stats: { type: 'string' },
    timeout: { type: 'string', default: '600' },
  },
});
const socketPath = positionals[0];
if (!socketPath) throw new Error('usage: server.mjs SOCKET [--workers N] [--stats FILE] [--timeout SECONDS]');
const timeoutMs = Number(values.timeout) * 1000;
const pool = new E2fsWorkerPool(Number(values.workers));
const wasmDir = wasmDistDir();
/** Per tool: calls, summed wall ms in the server, failures (crash/timeout/abort). */
const stats = {};

const KIND_STDOUT = 1;
const KIND_STDERR = 2;
const KIND_EXIT = 3;
/** Exit code reported when the WebAssembly run itself failed (crash, timeout): like SIGABRT. */
const CRASH_EXIT = 134;
/** Upper bound of one length field from the wrapper (stdin chunks are 64 KiB, strings small). */
const MAX_FIELD = 64 * 1024 * 1024;

/** Incremental reader of the request: fields arrive split across 'data' events. */
class Request {
  constructor() {
    this.rest = Buffer.alloc(0);
    this.stdin = [];
    this.header = undefined;
    this.complete = false;
    this.state = this.parseHeader();
    this.state.next(); // runs to the first `yield`, which then receives the bytes
  }

  /** Feeds bytes; returns true once the request (with stdin) is complete. */
  push(chunk) {
    const data = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    let used = 0;
    for (;;) {
      const step = this.state.next(data.subarray(used));
      if (step.done) {
        this.complete = true;
        return true;
      }
      if (step.value === 0) break;
      used += step.value;
    }
    this.rest = data.subarray(used);
    return false;
  }

  // A generator that yields how many bytes it consumed (0 = needs more) from each view it is given.
  *parseHeader() {
    let view = yield;
    const need = function* (n) {
      while (view.length < n) view = yield 0;
    };
    const u32 = function* () {
      yield* need(4);
      const value = view.readUInt32LE(0);
      view = yield 4;
      return value;
    };
    const field = function* () {
      const len = yield* u32();
      if (len > MAX_FIELD) throw new Error(`request field of ${len} bytes`);
      yield* need(len);
      const bytes = Buffer.from(view.subarray(0, len));
      if (len > 0) view = yield len; // yielding 0 would mean "need more"
      return bytes;
    };
    yield* need(4);
    if (view.subarray(0, 4).toString('latin1') !== 'DWE1') throw new Error('not a diskwright wrapper request');
    view = yield 4;
    const argc = yield* u32();
    const argv = [];
    for (let i = 0; i < argc; i++) argv.push((yield* field()).toString('utf8'));
    const envc = yield* u32();
    const env = {};
    for (let i = 0; i < envc; i++) {
      const entry = (yield* field()).toString('utf8');
      const eq = entry.indexOf('=');
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const cwd = (yield* field()).toString('utf8');
    const tty = yield* u32();
    this.header = { argv, env, cwd, tty };
    for (;;) {
      const chunk = yield* field();
      if (chunk.length === 0) return;
      this.stdin.push(chunk);
    }
  }
}

function frame(kind, bytes) {
  const head = Buffer.alloc(5);
  head.writeUInt8(kind, 0);
  head.writeUInt32LE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

function exitFrame(code) {
  const body = Buffer.alloc(4);
  body.writeInt32LE(code, 0);
  return frame(KIND_EXIT, body);
}

async function serve(socket, request) {
  const { argv, env, cwd } = request.header;
  const tool = basename(argv[0] ?? '');
  if (!E2FS_TOOLS.includes(tool)) {
    socket.end(Buffer.concat([frame(KIND_STDERR, Buffer.from(`diskwright e2fs server: ${tool} is not one of ${E2FS_TOOLS.join(', ')}\n`)), exitFrame(127)]));
    return;
  }
  const entry = (stats[tool] ??= { calls: 0, ms: 0, failures: 0 });
  entry.calls++;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${values.timeout} s`)), timeoutMs);
  // The wrapper was killed (a test's kill -9, a timeout): stop the tool as the signal would.
  socket.on('close', () => controller.abort(new Error('wrapper went away')));
  const started = performance.now();
  try {
    const result = await pool.run(
      // argv0: the name the tool reports itself by (`../e2fsck/e2fsck: …` in expected outputs).
      { wasmDir, tool, argv0: argv[0], argv: argv.slice(1), env, cwd, stdin: Buffer.concat(request.stdin), sparse: true },
      {
        signal: controller.signal,
        onOutput: (fd, bytes) => {
          if (!socket.destroyed) socket.write(frame(fd === 1 ? KIND_STDOUT : KIND_STDERR, Buffer.from(bytes)));
        },
      },
    );
    if (!socket.destroyed) socket.end(exitFrame(result.exitCode));
  } catch (error) {
    entry.failures++;
    const detail = error?.cause?.message ?? '';
    const message = `diskwright e2fs server: ${error?.message ?? error}\n${process.env.DW_E2FS_DEBUG ? `${detail}\n` : ''}`;
    if (!socket.destroyed) socket.end(Buffer.concat([frame(KIND_STDERR, Buffer.from(message)), exitFrame(CRASH_EXIT)]));
  } finally {
    clearTimeout(timer);
    entry.ms += performance.now() - started;
  }
}

const server = createServer((socket) => {
  const request = new Request();
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    if (request.complete) return;
    let done;
    try {
      done = request.push(chunk);
    } catch (error) {
      socket.destroy(error);
      return;
    }
    if (done) void serve(socket, request);
  });
});

rmSync(socketPath, { force: true });
server.listen(socketPath, () => process.stdout.write('ready\n'));

async function shutdown() {
  server.close();
  rmSync(socketPath, { force: true });
  if (values.stats) writeFileSync(values.stats, `${JSON.stringify(stats, null, 2)}\n`);
  await pool.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
