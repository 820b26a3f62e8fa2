import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBin, runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { articleLikeDos, u32 } from '../unit/partition/build.js';

let dir = '';
let disk = '';

beforeAll(async () => {
  dir = await tempDir('diskwright-cli-partitions-');
  disk = join(dir, 'disk.img');
  await writeFile(disk, articleLikeDos());
});

describe('diskwright partitions', () => {
  it('prints the sfdisk -l style listing with logical partitions', async () => {
    const result = await runInProcess(['partitions', disk]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`Disk ${disk}: 2 MiB, 2097152 bytes, 4096 sectors`);
    expect(lines).toContain('Disklabel type: dos');
    expect(lines).toContain('Disk identifier: 0x1234abcd');
    expect(result.stdout).toMatch(new RegExp(`${disk}5 +2002 +2501 +500 +250K 82 Linux swap / Solaris`));
  });

  it('prints sfdisk --json with --json', async () => {
    const result = await runInProcess(['partitions', disk, '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { partitiontable: { label: string; partitions: { node: string; start: number; type: string; bootable?: boolean }[] } };
    expect(json.partitiontable.label).toBe('dos');
    expect(json.partitiontable.partitions.map((p) => [p.node, p.start, p.type, p.bootable])).toEqual([
      [`${disk}1`, 64, '83', true],
      [`${disk}2`, 2000, '5', undefined],
      [`${disk}5`, 2002, '82', undefined],
      [`${disk}6`, 2602, '83', undefined],
      [`${disk}7`, 3102, '8e', undefined],
    ]);
  });

  it('prints warnings to stderr and still exits 0', async () => {
    const image = articleLikeDos();
    u32(image, 2600 * 512 + 446 + 16 + 8, 9999); // link outside the extended partition
    const path = join(dir, 'warn.img');
    await writeFile(path, image);
    const result = await runInProcess(['partitions', path]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^diskwright: warning: EBR at sector 2600 links to sector 11999, outside extended partition 2/);
  });

  it('fails with one line for a truncated image', async () => {
    const path = join(dir, 'short.img');
    await writeFile(path, new Uint8Array(200));
    const result = await runInProcess(['partitions', path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toBe(`diskwright: ${path}: the image is 200 bytes, too short to hold a partition table (512 bytes at least) [E_TRUNCATED]`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('fails with one line for an image without a partition table', async () => {
    const path = join(dir, 'blank.img');
    await writeFile(path, new Uint8Array(4096));
    const result = await runInProcess(['partitions', path]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(/no partition table: sector 0 lacks the 0x55AA boot signature .*\[E_BAD_SIGNATURE\]$/);
  });

  it('fails with E_LOOP for a looping EBR chain', async () => {
    const image = articleLikeDos();
    image[3100 * 512 + 446 + 16 + 4] = 0x05;
    u32(image, 3100 * 512 + 446 + 16 + 8, 0);
    u32(image, 3100 * 512 + 446 + 16 + 12, 10);
    const path = join(dir, 'loop.img');
    await writeFile(path, image);
    const result = await runInProcess(['partitions', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/loops back to sector 2000 \[E_LOOP\]/);
  });

  it('reports a missing file and a missing argument', async () => {
    const missing = await runInProcess(['partitions', join(dir, 'nope.img')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.img: no such file \[E_NOT_FOUND\]/);
    const none = await runInProcess(['partitions']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/expected one IMAGE argument/);
  });

  it('refuses a directory or device with a usage error', async () => {
    const result = await runInProcess(['partitions', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/is not a regular file .*\[E_INVALID_ARGUMENT\]/);
  });

  it('documents itself in --help', async () => {
    const result = await runInProcess(['partitions', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: diskwright partitions IMAGE \[--json\]/);
    expect(result.stdout).toContain('Examples:');
    expect(result.stdout).toContain('--json');
  });

  it('works from the built binary', async () => {
    const result = await runBin(['partitions', disk, '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).partitiontable.id).toBe('0x1234abcd');
    const bad = await runBin(['partitions', join(dir, 'short.img')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(2); // message + hint, no stack
  });
});
