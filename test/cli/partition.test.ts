import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBin, runInProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let dir = '';

beforeAll(async () => {
  dir = await tempDir('diskwright-cli-partition-');
});

async function blank(name: string, size = 64 * 1024 * 1024): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, size);
  return path;
}

describe('diskwright partition', () => {
  it('reads the script from stdin and prints the new table as sfdisk --json', async () => {
    const image = await blank('stdin.img');
    const result = await runBin(['partition', image, '-', '--json'], { input: 'label: dos\nlabel-id: 0x01020304\nsize=32M, type=83, bootable\ntype=5\ntype=82\n' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { partitiontable: { id: string; partitions: { node: string; start: number; size: number; type: string }[] } };
    expect(json.partitiontable.id).toBe('0x01020304');
    expect(json.partitiontable.partitions.map((p) => [p.node, p.start, p.size, p.type])).toEqual([
      [`${image}1`, 2048, 65536, '83'],
      [`${image}2`, 67584, 63488, '5'],
      [`${image}5`, 69632, 61440, '82'],
    ]);
  });

  it('reads the script from a file and prints the sfdisk -l listing', async () => {
    const image = await blank('file.img');
    const script = join(dir, 'layout.sfdisk');
    await writeFile(script, 'label: gpt\nlabel-id: 0FC63DAF-8483-4772-8E79-3D69D8477DE4\nsize=8M, type=U, name=esp\ntype=L, name=root\n');
    const result = await runInProcess(['partition', image, script]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Disklabel type: gpt');
    expect(result.stdout).toMatch(new RegExp(`${image}1 +2048 +18431 +16384 +8M EFI System`));
  });

  it('fails with one line naming the script line for a bad script, leaving the image blank', async () => {
    const image = await blank('bad.img');
    const result = await runBin(['partition', image], { input: 'label: dos\nstart=2048, size=1000\nstart=2500, size=10\n' });
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')[0]).toMatch(/^diskwright: script line 3: start sector 2500 is out of range/);
    expect(result.stderr).not.toMatch(/at .*\.js/);
    const listing = await runInProcess(['partitions', image]);
    expect(listing.code).not.toBe(0);
  });

  it('fails clearly when the image does not exist', async () => {
    const result = await runInProcess(['partition', join(dir, 'missing.img'), '-']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/missing\.img: no such file/);
  });
});
