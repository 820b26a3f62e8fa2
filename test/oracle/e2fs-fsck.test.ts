import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFilesystem, closeE2fsPool, fsckArgs, type CheckMode } from '../../src/e2fs/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { FAKE_TIME, FIXED_SEED, FIXED_UUID, garbage, host, makeTree, pokeBytes, sparseFile, twinCopies } from '../unit/e2fs/host.js';

// e2fsck in WebAssembly against host e2fsck 1.47.0 on the same images with the same clock:
// same exit codes, same messages, byte-identical repaired images.
let dir: string;
let clean: string;
const corrupted: Record<string, string> = {};

async function blockSizeOf(image: string): Promise<number> {
  const dump = await host('dumpe2fs', ['-h', image]);
  return Number(/Block size:\s+(\d+)/.exec(dump.stdout)![1]);
}

beforeAll(async () => {
  await requireTool('e2fsck', 'e2fsprogs');
  dir = await tempDir();
  const tree = join(dir, 'tree');
  await makeTree(tree, 10, 15);
  clean = join(dir, 'clean.img');
  await sparseFile(clean, 64 << 20);
  const made = await host('mke2fs', ['-q', '-F', '-t', 'ext4', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED}`, '-d', tree, clean]);
  expect(made.exitCode).toBe(0);
  const blockSize = await blockSizeOf(clean);

  // 1. The first blocks of group 0's inode table (root directory inode included) zeroed.
  const itable = join(dir, 'itable.img');
  await copyFile(clean, itable);
  const groups = await host('dumpe2fs', [clean]);
  const tableStart = Number(/Inode table at (\d+)-/.exec(groups.stdout)![1]);
  await pokeBytes(itable, tableStart * blockSize, new Uint8Array(4 * blockSize));
  corrupted['zeroed inode table'] = itable;

  // 2. The primary superblock zeroed (e2fsck falls back to a backup).
  const sb = join(dir, 'superblock.img');
  await copyFile(clean, sb);
  await pokeBytes(sb, 1024, new Uint8Array(1024));
  corrupted['zeroed primary superblock'] = sb;

  // 3. Garbage in the blocks of two directories.
  const dirs = join(dir, 'dirblocks.img');
  await copyFile(clean, dirs);
  for (const [i, name] of ['/dir2', '/dir5'].entries()) {
    const blocks = await host('debugfs', ['-R', `blocks ${name}`, clean]);
    const first = Number(blocks.stdout.trim().split(/\s+/)[0]);
    expect(first).toBeGreaterThan(0);
    await pokeBytes(dirs, first * blockSize, garbage(blockSize, 1234 + i));
  }
  corrupted['garbage in directory blocks'] = dirs;
}, 120_000);

afterAll(async () => {
  await closeE2fsPool();
});

const modes: CheckMode[] = ['check', 'preen', 'fix'];

function normalize(output: string, path: string): string {
  return output.split(path).join('IMAGE');
}

const cases: [string, () => string][] = [
  ['clean image', () => clean],
  ...['zeroed inode table', 'zeroed primary superblock', 'garbage in directory blocks'].map((name): [string, () => string] => [name, () => corrupted[name]!]),
];

describe.each(cases)(
  'e2fsck on a %s',
  (_name: string, image: () => string) => {
    it.each(modes)('mode %s gives host e2fsck’s exit code, messages and resulting bytes', async (mode) => {
      const [hostCopy, wasmCopy] = await twinCopies(image(), dir, `${_name.replace(/\s+/g, '-')}-${mode}`);
      const expected = await host('e2fsck', [...fsckArgs(mode, undefined), hostCopy]);
      const actual = await checkFilesystem(wasmCopy, { mode, fakeTime: FAKE_TIME });
      expect(actual.exitCode).toBe(expected.exitCode);
      // The corruption is real: host e2fsck -n finds it.
      if (mode === 'check') expect(expected.exitCode === 0).toBe(_name === 'clean image');
      expect(normalize(actual.output, wasmCopy)).toBe(normalize(expected.stdout + expected.stderr, hostCopy));
      expect(Buffer.compare(await readFile(wasmCopy), await readFile(hostCopy))).toBe(0);
      if (_name !== 'clean image' && mode === 'fix') {
        expect(actual.status).not.toBe('clean');
        // After the repair the filesystem checks clean with the host tool.
        expect((await host('e2fsck', ['-fn', wasmCopy])).exitCode).toBe(0);
      }
    });
  },
);
