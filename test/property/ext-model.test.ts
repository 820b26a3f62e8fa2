import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem, type FilesystemSession } from '../../src/ext/index.js';
import { isDiskwrightError } from '../../src/errors.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { hostCat, hostFsck, makeExtImage } from '../unit/ext/ext-images.js';

// Model-based test: random sequences of file operations run against a real ext4 image (through
// withFilesystem) and against an in-memory model; every outcome (success or error code) and the
// final tree must agree, and host e2fsck/debugfs must accept the committed image.

type Node = { kind: 'file'; data: string } | { kind: 'dir' } | { kind: 'symlink'; target: string };
type Model = Map<string, Node>;
type Outcome = 'ok' | string;

const parentOf = (p: string): string => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')));
const isDir = (m: Model, p: string): boolean => p === '/' || m.get(p)?.kind === 'dir';
const children = (m: Model, p: string): string[] => [...m.keys()].filter((k) => parentOf(k) === p);

async function outcome(fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    await fn();
    return 'ok';
  } catch (error) {
    if (isDiskwrightError(error)) return error.code;
    throw error;
  }
}

interface Op {
  readonly label: string;
  model(m: Model): Outcome;
  real(fs: FilesystemSession): Promise<unknown>;
}

/** One step for fc.commands: applies the op to the model and the image, outcomes must agree. */
class OpCommand implements fc.AsyncCommand<Model, FilesystemSession> {
  constructor(private readonly op: Op) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, fs: FilesystemSession): Promise<void> {
    const expected = this.op.model(model);
    const actual = await outcome(() => this.op.real(fs));
    expect(actual, this.op.label).toBe(expected);
  }
  toString(): string {
    return this.op.label;
  }
}

const name = fc.constantFrom('a', 'b');
const path = fc.array(name, { minLength: 1, maxLength: 3 }).map((parts) => `/${parts.join('/')}`);
const content = fc.string({ maxLength: 40 });

const WEIGHTS = [3, 3, 2, 2, 1]; // writeFile, mkdir, rm, rename, symlink
const ops: fc.Arbitrary<Op>[] = [
  fc.tuple(path, content).map(([p, data]) => ({
    label: `writeFile(${p})`,
    model: (m) => {
      if (!isDir(m, parentOf(p))) return m.has(parentOf(p)) ? 'E_INVALID_ARGUMENT' : 'E_NOT_FOUND';
      if (m.get(p)?.kind === 'dir') return 'E_INVALID_ARGUMENT';
      m.set(p, { kind: 'file', data });
      return 'ok';
    },
    real: (fs) => fs.writeFile(p, data),
  })),
  path.map((p) => ({
    label: `mkdir(${p})`,
    model: (m) => {
      if (m.has(p)) return 'E_EXISTS';
      if (!isDir(m, parentOf(p))) return m.has(parentOf(p)) ? 'E_INVALID_ARGUMENT' : 'E_NOT_FOUND';
      m.set(p, { kind: 'dir' });
      return 'ok';
    },
    real: (fs) => fs.mkdir(p),
  })),
  fc.tuple(path, fc.boolean()).map(([p, recursive]) => ({
    label: `rm(${p}, ${recursive})`,
    model: (m) => {
      const node = m.get(p);
      if (!node) return 'E_NOT_FOUND';
      if (node.kind === 'dir' && !recursive && children(m, p).length > 0) return 'E_INVALID_ARGUMENT';
      for (const k of [...m.keys()]) if (k === p || k.startsWith(`${p}/`)) m.delete(k);
      return 'ok';
    },
    real: (fs) => fs.rm(p, { recursive }),
  })),
  fc.tuple(path, path).map(([a, b]) => ({
    label: `rename(${a}, ${b})`,
    model: (m) => {
      const node = m.get(a);
      if (!node) return 'E_NOT_FOUND';
      if (a === b) return 'ok';
      if (node.kind === 'dir' && b.startsWith(`${a}/`)) return 'E_INVALID_ARGUMENT';
      if (!isDir(m, parentOf(b))) return m.has(parentOf(b)) ? 'E_INVALID_ARGUMENT' : 'E_NOT_FOUND';
      const target = m.get(b);
      if (target) {
        if ((target.kind === 'dir') !== (node.kind === 'dir')) return 'E_INVALID_ARGUMENT';
        if (target.kind === 'dir' && children(m, b).length > 0) return 'E_EXISTS';
        m.delete(b);
      }
      for (const k of [...m.keys()].sort()) {
        if (k === a || k.startsWith(`${a}/`)) {
          const moved = m.get(k)!;
          m.delete(k);
          m.set(b + k.slice(a.length), moved);
        }
      }
      return 'ok';
    },
    real: (fs) => fs.rename(a, b),
  })),
  fc.tuple(path, fc.constantFrom('x', '../y', '/etc/z')).map(([p, target]) => ({
    label: `symlink(${target}, ${p})`,
    model: (m) => {
      if (m.has(p)) return 'E_EXISTS';
      if (!isDir(m, parentOf(p))) return m.has(parentOf(p)) ? 'E_INVALID_ARGUMENT' : 'E_NOT_FOUND';
      m.set(p, { kind: 'symlink', target });
      return 'ok';
    },
    real: (fs) => fs.symlink(target, p),
  })),
];

async function snapshot(fs: FilesystemSession, dir = '/'): Promise<Model> {
  const out: Model = new Map();
  for (const entry of await fs.readdir(dir)) {
    if (entry.path === '/lost+found') continue;
    if (entry.kind === 'directory') {
      out.set(entry.path, { kind: 'dir' });
      for (const [k, v] of await snapshot(fs, entry.path)) out.set(k, v);
    } else if (entry.kind === 'symlink') out.set(entry.path, { kind: 'symlink', target: entry.linkTarget! });
    else out.set(entry.path, { kind: 'file', data: await fs.readText(entry.path) });
  }
  return out;
}

const sorted = (m: Model): [string, Node][] => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

let dir: string;
beforeAll(async () => {
  await requireTool('e2fsck', 'e2fsprogs');
  dir = await tempDir();
});

describe('file operations against an in-memory model', () => {
  it('agree on every outcome and on the final tree, and host e2fsck accepts the result', { timeout: 240_000 }, async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(ops.flatMap((op, i) => Array.from({ length: WEIGHTS[i]! }, () => op.map((o) => new OpCommand(o)))), { maxCommands: 30 }), async (commands) => {
        const image = join(dir, `model-${run++}.img`);
        await makeExtImage(image, 'ext4', '16M');
        const model: Model = new Map();
        await withFilesystem(image, { write: true }, async (fs) => {
          await fc.asyncModelRun(() => ({ model, real: fs }), commands);
          expect(sorted(await snapshot(fs))).toEqual(sorted(model));
        });
        const fsck = await hostFsck(image);
        expect(fsck.exitCode, fsck.output).toBe(0);
        await withFilesystem(image, {}, async (fs) => expect(sorted(await snapshot(fs))).toEqual(sorted(model)));
        const firstFile = sorted(model).find(([, n]) => n.kind === 'file');
        if (firstFile) expect((await hostCat(image, firstFile[0])).toString()).toBe((firstFile[1] as { data: string }).data);
      }),
      { numRuns: 40 },
    );
  });
});
