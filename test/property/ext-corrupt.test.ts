import { mkdir, readFile, writeFile, symlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { withFilesystem, type FilesystemSession } from '../../src/ext/index.js';
import { isDiskwrightError } from '../../src/errors.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { SBIN_ENV } from '../unit/ext/ext-images.js';

// Hostile images: random bytes overwritten anywhere in a small ext4 → every session either works or
// fails with a one-line DiskwrightError; a failed write session leaves the bytes as they were.

let dir: string;
let pristine: Buffer;
beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  dir = await tempDir();
  const src = join(dir, 'src');
  await mkdir(join(src, 'a', 'b'), { recursive: true });
  await writeFile(join(src, 'a', 'b', 'c'), 'hello\n'.repeat(500));
  await symlink('a/b/c', join(src, 'l'));
  const image = join(dir, 'pristine.img');
  await execa('truncate', ['-s', '8M', image]);
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, image], { env: SBIN_ENV });
  pristine = await readFile(image);
});

async function walk(fs: FilesystemSession, path: string, depth = 0): Promise<void> {
  if (depth > 8) return;
  for (const entry of await fs.readdir(path)) {
    if (entry.kind === 'directory') await walk(fs, entry.path, depth + 1);
    else if (entry.kind === 'file' && entry.size < 1 << 20) await fs.readFile(entry.path);
  }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('corrupted images', () => {
  it('give a value or a typed error, never a crash, and failed writes change nothing', { timeout: 240_000 }, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.oneof(fc.integer({ min: 1024, max: 65535 }), fc.integer({ min: 0, max: 1024 * 1024 - 1 }), fc.integer({ min: 0, max: 8 * 1024 * 1024 - 1 })), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        async (patches, write) => {
          const bytes = Buffer.from(pristine);
          for (const [at, value] of patches) bytes[at] = value;
          const image = join(dir, `c${n++}.img`);
          await writeFile(image, bytes);
          try {
            await withFilesystem(image, { write }, async (fs) => {
              await walk(fs, '/');
              if (write) await fs.writeFile('/new', 'x');
            });
          } catch (error) {
            expect(isDiskwrightError(error), String(error)).toBe(true);
            expect((error as Error).message).not.toContain('\n');
            expect(sha(await readFile(image))).toBe(sha(bytes));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
