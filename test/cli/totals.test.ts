import { link, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBin } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

// Directory sources show totals (issue 14): every copy of a tree reports "N of M files, X of Y"
// — as --json progress events with `totalFiles` and `total` — and the totals are what it copies.

interface ProgressEvent {
  readonly step: string;
  readonly files: number;
  readonly totalFiles: number | null;
  readonly bytes: number;
  readonly total: number | null;
}

function progressEvents(stderr: string): ProgressEvent[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{"event":"progress"'))
    .map((line) => JSON.parse(line) as ProgressEvent);
}

let dir: string;
let tree: string;
/** What a copy writes: regular files (each link once for mke2fs, which links the second). */
const FILES = 120;
let bytes = 0;

beforeAll(async () => {
  dir = await tempDir();
  tree = join(dir, 'tree');
  for (let d = 0; d < 6; d++) {
    await mkdir(join(tree, `d${d}`, 'sub'), { recursive: true });
    for (let f = 0; f < FILES / 6; f++) {
      const body = Buffer.alloc(1000 + d * 100 + f, 0x41 + d);
      bytes += body.length;
      await writeFile(join(tree, `d${d}`, f % 2 ? 'sub' : '', `f${f}`), body);
    }
  }
}, 60_000);

function expectTotals(events: readonly ProgressEvent[], files: number, total: number): void {
  expect(events.length).toBeGreaterThan(0);
  const last = events.at(-1)!;
  expect(last).toMatchObject({ files, totalFiles: files, bytes: total, total });
  // Once known, totals never change and the figures never pass them.
  const known = events.filter((e) => e.totalFiles !== null);
  for (const e of known) expect(e).toMatchObject({ totalFiles: files, total });
  for (const e of events) expect(e.files).toBeLessThanOrEqual(files);
}

describe('totals of directory sources', () => {
  it('mkfs --from DIR counts the tree beside the fill: the events end at N of N files, Y of Y bytes', async () => {
    // A hard link and an empty file: mke2fs -d reads neither, so neither is counted.
    const withLinks = join(dir, 'links');
    await mkdir(withLinks);
    await writeFile(join(withLinks, 'a'), 'data\n');
    await link(join(withLinks, 'a'), join(withLinks, 'b'));
    await writeFile(join(withLinks, 'empty'), '');
    const one = await runBin(['mkfs', join(dir, 'links.img'), '--size', '16M', '--from', withLinks, '--json']);
    expect(one.code, one.stderr).toBe(0);
    expectTotals(progressEvents(one.stderr), 1, 5);

    const made = await runBin(['mkfs', join(dir, 'tree.img'), '--size', '64M', '--from', tree, '--json']);
    expect(made.code, made.stderr).toBe(0);
    expectTotals(progressEvents(made.stderr), FILES, bytes);
  }, 60_000);

  it('fs get of a tree lists it first: the first event already says of how many files and bytes', async () => {
    const image = join(dir, 'get.img');
    expect((await runBin(['mkfs', image, '--size', '64M', '--from', tree])).code).toBe(0);
    const out = join(dir, 'got');
    const got = await runBin(['fs', 'get', image, '/', out, '--json']);
    expect(got.code, got.stderr).toBe(0);
    const events = progressEvents(got.stderr);
    expect(events[0]).toMatchObject({ files: 0, totalFiles: FILES, bytes: 0, total: bytes });
    expectTotals(events, FILES, bytes);
  }, 60_000);

  it('fs put of a tree into an existing directory (the per-file path) reports the walked totals', async () => {
    const image = join(dir, 'put.img');
    expect((await runBin(['mkfs', image, '--size', '64M'])).code).toBe(0);
    const put = await runBin(['fs', 'put', image, tree, '/', '--json']);
    expect(put.code, put.stderr).toBe(0);
    expectTotals(progressEvents(put.stderr), FILES, bytes);
  }, 60_000);
});
