import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { makeDiskFromTree, writeDebianLikeTree } from '../helpers/debian-like.js';
import { tempDir } from '../helpers/tmp.js';

let dir = '';

beforeAll(async () => {
  dir = await tempDir('diskwright-template-precheck-');
});

describe('template make checks the source before the extract', () => {
  it('refuses a filesystem with no /etc (not a root filesystem) and writes nothing', async () => {
    const tree = join(dir, 'data-tree');
    await mkdir(join(tree, 'srv'), { recursive: true });
    await writeFile(join(tree, 'srv/file'), 'data');
    const disk = join(dir, 'data.img');
    await makeDiskFromTree(tree, disk, { type: 'ext4', fsMiB: 8 });
    const out = join(dir, 'out-data');
    const result = await runInProcess(['template', 'make', disk, '-p', '1', '-o', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^diskwright: partition 1 of ${disk} has no /etc: it is not a root filesystem, so there is nothing to templatize \\[E_TEMPLATE\\]\\n  hint: pick the partition holding the root filesystem`));
    expect((await readdir(dir)).filter((n) => n.includes('out-data'))).toEqual([]);
  });

  it('finds a missing kernel before copying, with a hint that fits (--kernel-dir, not --partition)', async () => {
    const tree = join(dir, 'nokernel-tree');
    await writeDebianLikeTree(tree, { withoutKernel: true });
    const disk = join(dir, 'nokernel.img');
    await makeDiskFromTree(tree, disk, { type: 'ext4', fsMiB: 16 });
    const out = join(dir, 'out-nokernel');
    const result = await runInProcess(['template', 'make', disk, '-p', '1', '-o', out, '--kernel-dir', join(dir, 'kernels')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^diskwright: partition 1 of .* has no kernel \(\/boot\/vmlinuz-\*\) \[E_NOT_FOUND\]\n  hint: drop --kernel-dir/);
    expect((await readdir(dir)).filter((n) => n.includes('out-nokernel') || n === 'kernels')).toEqual([]);
  });
});
