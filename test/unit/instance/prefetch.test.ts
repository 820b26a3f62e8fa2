import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backingIdentity } from '../../../src/disk/backing-identity.js';
import { mergeReadRanges } from '../../../src/e2fs/disk-factory.js';
import { hasReadSet, prefetchTemplate, readSetPath, saveReadSet } from '../../../src/instance/prefetch.js';
import { tempDir } from '../../helpers/tmp.js';

const dir = await tempDir('prefetch-');
const MiB = 1024 * 1024;
let counter = 0;

/** A sparse 64 MiB "template" with data at 1–2 MiB and 40–41 MiB, holes elsewhere. */
function sparseTemplate(): string {
  const path = join(dir, `tmpl${counter++}`);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, Buffer.alloc(MiB, 1), 0, MiB, MiB);
    writeSync(fd, Buffer.alloc(MiB, 2), 0, MiB, 40 * MiB);
    // 64 MiB long, the last byte the only data past 41 MiB.
    writeSync(fd, Buffer.alloc(1, 3), 0, 1, 64 * MiB - 1);
  } finally {
    closeSync(fd);
  }
  return path;
}

const env = (): NodeJS.ProcessEnv => ({ DISKWRIGHT_CACHE_DIR: join(dir, `cache${counter++}`) });

describe('recorded read ranges', () => {
  it('are sorted, widened to whole 4 KiB blocks and merged where they touch or overlap', () => {
    expect(mergeReadRanges([8192, 100, 0, 4096, 4096, 10, 20000, 5000, 24000, 8192])).toEqual([0, 12288, 16384, 16384]);
    expect(mergeReadRanges([])).toEqual([]);
  });
});

describe('the read-ahead of a thin instance template', () => {
  it('keeps only the data parts of what a check read, and advises exactly those bytes to the kernel', async () => {
    const template = sparseTemplate();
    const identity = backingIdentity(template);
    const cache = env();
    expect(hasReadSet(identity, cache)).toBe(false);
    // A check read the hole at 0–1 MiB, the data at 1–2 MiB, half of the data at 40 MiB and a hole.
    expect(saveReadSet(template, identity, [0, 2 * MiB, 40 * MiB, MiB / 2, 50 * MiB, MiB], cache)).toBe(true);
    expect(hasReadSet(identity, cache)).toBe(true);
    const record = JSON.parse(readFileSync(readSetPath(identity, cache), 'utf8')) as { ranges: number[] };
    expect(record.ranges).toEqual([MiB, MiB, 40 * MiB, MiB / 2]);
    expect(await prefetchTemplate(template, identity, cache)).toBe(MiB + MiB / 2);
  });

  it('does nothing for a template whose identity changed since the record was made', async () => {
    const template = sparseTemplate();
    const cache = env();
    const before = backingIdentity(template);
    saveReadSet(template, before, [MiB, MiB], cache);
    // Inside the first 64 KiB: the identity's fingerprint changes even within one mtime tick.
    const fd = openSync(template, 'r+');
    writeSync(fd, Buffer.from('changed'), 0, 7, 1024);
    closeSync(fd);
    const after = backingIdentity(template);
    expect(hasReadSet(after, cache)).toBe(false);
    expect(await prefetchTemplate(template, after, cache)).toBe(0);
  });

  it('ignores a damaged or hostile record (bad JSON, ranges outside the template, overlapping) without failing', async () => {
    const template = sparseTemplate();
    const identity = backingIdentity(template);
    const cache = env();
    saveReadSet(template, identity, [MiB, MiB], cache);
    const path = readSetPath(identity, cache);
    const good = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    for (const ranges of [[0, 128 * MiB], [MiB, MiB, MiB, MiB], [-4096, 4096], [MiB, 0], [MiB], ['x', 1]]) {
      writeFileSync(path, JSON.stringify({ ...good, ranges }));
      expect(await prefetchTemplate(template, identity, cache)).toBe(0);
    }
    writeFileSync(path, '{not json');
    expect(await prefetchTemplate(template, identity, cache)).toBe(0);
    writeFileSync(path, JSON.stringify({ ...good, version: 2 }));
    expect(await prefetchTemplate(template, identity, cache)).toBe(0);
  });

  it('is not kept when the cache directory cannot be written', () => {
    const template = sparseTemplate();
    const blocker = join(dir, `file${counter++}`);
    writeFileSync(blocker, 'not a directory');
    expect(saveReadSet(template, backingIdentity(template), [MiB, MiB], { DISKWRIGHT_CACHE_DIR: join(blocker, 'cache') })).toBe(false);
  });
});
