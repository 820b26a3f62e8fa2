import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { writePartitionTable } from '../../src/index.js';

let disk = '';

beforeAll(async () => {
  const dir = await tempDir('diskwright-cli-mkfs-partition-');
  disk = join(dir, 'disk.img');
  await writeFile(disk, '');
  await truncate(disk, 48 * 1024 * 1024);
  await writePartitionTable(disk, 'label: dos\nsize=32M\ntype=5\ntype=S\n');
});

describe('diskwright mkfs --partition', () => {
  it('makes a filesystem in a partition and reports where, with --json', async () => {
    const result = await runInProcess(['mkfs', disk, '-p', '1', '--type', 'ext4', '--json']);
    // stderr holds only the commit step's events (no prose, no error).
    expect(result.stderr.split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown)).toEqual([
      { event: 'step', step: 'commit', phase: 'start' },
      { event: 'step', step: 'commit', phase: 'done', seconds: expect.any(Number) },
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ partition: 1, offset: 1048576, size: 33554432, type: 'ext4' });
  });

  it('writes a swap signature in a logical partition', async () => {
    const result = await runInProcess(['mkfs', disk, '--partition', '5', '--type', 'swap']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/partition 5: swap area of \d+ bytes/);
  });

  it('rejects --size with --partition, --type swap without it, and a bad number', async () => {
    expect((await runInProcess(['mkfs', disk, '-p', '1', '--size', '8M'])).stderr).toMatch(/--size cannot be combined with --partition/);
    expect((await runInProcess(['mkfs', disk, '--type', 'swap', '--size', '8M'])).stderr).toMatch(/--type swap needs --partition/);
    expect((await runInProcess(['mkfs', disk, '-p', 'x'])).stderr).toMatch(/--partition expects a partition number/);
  });
});
