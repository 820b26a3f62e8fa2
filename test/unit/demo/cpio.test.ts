import { mkdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { encodeCpio, type CpioEntry } from '../../../src/demo/cpio.js';
import { requireTool } from '../../helpers/oracle.js';
import { tempDir } from '../../helpers/tmp.js';

const sample: CpioEntry[] = [
  { type: 'dir', path: 'bin' },
  { type: 'file', path: 'bin/hello', data: new TextEncoder().encode('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { type: 'symlink', path: 'bin/sh', target: 'hello' },
  { type: 'dir', path: 'dev' },
  { type: 'char', path: 'dev/console', major: 5, minor: 1 },
  { type: 'file', path: 'odd', data: new Uint8Array([1, 2, 3]) },
];

describe('encodeCpio (newc)', () => {
  it('writes an archive GNU cpio lists with the same members, modes and device numbers', async () => {
    await requireTool('cpio', 'cpio');
    const listing = await execa('cpio', ['-itv', '--quiet'], { env: { TZ: 'UTC' }, input: Buffer.from(encodeCpio(sample)) });
    const lines = listing.stdout.split('\n');
    expect(lines.map((l) => / 1970 (.*)$/.exec(l)?.[1])).toEqual(['bin', 'bin/hello', 'bin/sh -> hello', 'dev', 'dev/console', 'odd']);
    expect(lines[1]).toMatch(/^-rwxr-xr-x/);
    expect(lines[4]).toMatch(/^crw-------\s+1\s+root\s+root\s+5,\s+1 /);
  });

  it('round-trips file contents and symlinks through cpio -i', async () => {
    await requireTool('cpio', 'cpio');
    const dir = await tempDir();
    const out = join(dir, 'x');
    await mkdir(out);
    const withoutDevices = sample.filter((e) => e.type !== 'char');
    await execa('cpio', ['-id', '--quiet', '--no-absolute-filenames'], { cwd: out, input: Buffer.from(encodeCpio(withoutDevices)) });
    expect(await readFile(join(out, 'bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect((await stat(join(out, 'bin/hello'))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(out, 'bin/sh'))).toBe('hello');
    expect([...(await readFile(join(out, 'odd')))]).toEqual([1, 2, 3]);
  });

  it('is deterministic: the same entries give the same bytes', () => {
    expect(Buffer.from(encodeCpio(sample)).equals(Buffer.from(encodeCpio(sample)))).toBe(true);
  });

  it('refuses absolute, empty, dot-dot and duplicate member paths', () => {
    for (const path of ['/etc', '', 'a/../b', 'a//b', './a']) {
      expect(() => encodeCpio([{ type: 'dir', path }])).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
    }
    expect(() => encodeCpio([{ type: 'dir', path: 'a' }, { type: 'dir', path: 'a' }])).toThrow(/twice/);
  });

  test.prop(
    [fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[a-z0-9_-]{1,12}$/), data: fc.uint8Array({ maxLength: 300 }) }), { selector: (f) => f.name, minLength: 1, maxLength: 8 })],
    { numRuns: 15 },
  )('any flat set of files comes back from cpio -i byte for byte', async (files) => {
    const dir = await tempDir('diskwright-cpio-');
    await execa('cpio', ['-id', '--quiet', '--no-absolute-filenames'], {
      cwd: dir,
      input: Buffer.from(encodeCpio(files.map((f) => ({ type: 'file' as const, path: f.name, data: f.data })))),
    });
    for (const f of files) expect(Buffer.from(await readFile(join(dir, f.name))).equals(Buffer.from(f.data))).toBe(true);
  });
});
