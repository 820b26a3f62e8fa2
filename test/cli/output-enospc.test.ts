import { execa } from 'execa';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * A real disk full under convert, extract and create (root mounts an 8 MiB tmpfs; CI runs as root):
 * the error names the output the user gave, never the hidden temp file, says where space is
 * missing, and nothing is left behind.
 */
const asRoot = process.getuid?.() === 0;
let dir: string;
let mount: string;
let raw: string;

beforeAll(async () => {
  if (!asRoot) return;
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('enospc-');
  mount = join(dir, 'small');
  mkdirSync(mount);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount]);
  // 20 MiB of data in partition 1: more than the tmpfs holds, as a raw disk and as a partition.
  raw = join(dir, 'disk.raw');
  writeFileSync(raw, Buffer.alloc(32 << 20));
  await execa('sfdisk', ['--no-reread', '--no-tell-kernel', raw], { input: 'label: dos\nstart=2048, type=83\n', env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  await execa('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'seek=1', 'count=20', 'conv=notrunc', 'status=none']);
});

afterAll(async () => {
  if (asRoot && mount) await execa('umount', [mount], { reject: false });
});

function expectNamedOutput(result: { code: number; stderr: string }, out: string): void {
  expect(result.code).toBe(1);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toEqual([
    `diskwright: cannot write ${out}: no space left on the filesystem holding ${mount} (ENOSPC) [E_IO]`,
    `  hint: free space on the filesystem of ${mount}, or choose an output on another filesystem; no partial output was left`,
  ]);
  expect(result.stderr).not.toContain('.diskwright-');
}

describe.runIf(asRoot)('a full output filesystem', () => {
  it('convert to raw and to qcow2 names OUT, hints at the space, and leaves no output or temp file', async () => {
    for (const format of ['raw', 'qcow2']) {
      const out = join(mount, `out.${format}`);
      expectNamedOutput(await runInProcess(['convert', raw, out, '-O', format]), out);
      expect(readdirSync(mount)).toEqual([]);
    }
  });

  it('extract names OUT the same way and leaves nothing', async () => {
    const out = join(mount, 'p1.img');
    expectNamedOutput(await runInProcess(['extract', raw, '--partition', '1', '-o', out]), out);
    expect(readdirSync(mount)).toEqual([]);
  });

  it('create of a qcow2 on a filesystem with no room for its metadata names IMAGE and leaves nothing', async () => {
    const filler = join(mount, 'filler');
    const { stdout } = await execa('df', ['-B1', '--output=avail', mount]);
    await execa('fallocate', ['-l', stdout.trim().split('\n')[1]!, filler]);
    try {
      const out = join(mount, 'new.qcow2');
      expectNamedOutput(await runInProcess(['create', out, '--format', 'qcow2', '--size', '1G']), out);
      expect(readdirSync(mount)).toEqual(['filler']);
    } finally {
      await execa('rm', ['-f', filler]);
    }
  });

  it('writes the same outputs once there is room (the failures above were the space, not the inputs)', async () => {
    const out = join(mount, 'ok.qcow2');
    const small = join(dir, 'small.raw');
    writeFileSync(small, randomBytes(1 << 20));
    expect((await runInProcess(['convert', small, out, '-O', 'qcow2'])).code).toBe(0);
    await execa('rm', ['-f', out]);
  });
});
