import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let truncated: string;
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

beforeAll(async () => {
  await requireTool('qemu-img', 'qemu-utils');
  dir = await tempDir('damaged-qcow2-');
  // A 40 MiB MBR disk (sfdisk) whose p1 is an ext4 made by host mke2fs, as qcow2 (qemu-img).
  const raw = join(dir, 'disk.raw');
  writeFileSync(raw, Buffer.alloc(0));
  await execa('truncate', ['-s', '40M', raw]);
  await execa('sfdisk', ['--quiet', raw], { input: 'label: dos\nstart=2048, type=83\n', env });
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', 'offset=1048576', raw, '38M'], { env });
  const qcow2 = join(dir, 'disk.qcow2');
  await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  // A download cut short: the header, the tables and the superblock's cluster are there, the
  // clusters of the group's bitmaps and inode table are not.
  truncated = join(dir, 'cut.qcow2');
  const bytes = readFileSync(qcow2);
  writeFileSync(truncated, bytes.subarray(0, bytes.length >> 1));
});
describe('a qcow2 cut short, read by the fs commands', () => {
  it('names the qcow2 problem, not the errcode libext2fs made of it', async () => {
    for (const args of [['fs', 'ls', truncated, '-p', '1', '/'], ['fs', 'cat', truncated, '-p', '1', '/lost+found'], ['fs', 'stat', truncated, '-p', '1', '/lost+found']]) {
      const run = await runInProcess([...args, '--format', 'qcow2']);
      expect(run.code, run.stderr).toBe(1);
      const lines = run.stderr.split('\n').filter((l) => l !== '');
      expect(lines[0]).toMatch(/^diskwright: qcow2: .* past the end of the file \(\d+\) \[E_OUT_OF_RANGE\]$/);
      expect(run.stderr).not.toMatch(/node_ext2fs|UNKNOWN|DiskwrightError/);
    }
  });
});
