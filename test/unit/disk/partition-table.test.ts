import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execa } from 'execa';
import { commitOverlay, Overlay, RawFileDisk } from '../../../src/disk/index.js';
import { readDiskPartitionTable, readPartitionTable } from '../../../src/partition/index.js';
import { tempDir } from '../../helpers/tmp.js';

describe('partition tables through the block layer', () => {
  it('reads the table an overlay holds, and the file only after the commit (sfdisk as oracle)', async () => {
    const dir = await tempDir();
    const image = join(dir, 'disk.img');
    await execa('truncate', ['-s', '16M', image]);
    await execa('sfdisk', ['--quiet', image], { input: 'label: dos\nstart=2048, size=8192, type=83\n', env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    const raw = RawFileDisk.open(image, { readOnly: false });
    const overlay = new Overlay(raw);
    // Grow partition 1's sector count (MBR entry 1 at 446, size field at +12) in the overlay only.
    const entry = Buffer.alloc(4);
    entry.writeUInt32LE(16384);
    overlay.write(entry, 446 + 12);
    expect(readDiskPartitionTable(overlay).partitions[0]!.size).toBe(16384n);
    expect((await readPartitionTable(image)).partitions[0]!.size).toBe(8192n);
    commitOverlay(overlay);
    raw.close();
    const { stdout } = await execa('sfdisk', ['--json', image], { env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    expect(JSON.parse(stdout).partitiontable.partitions[0].size).toBe(16384);
    expect((await readPartitionTable(image)).partitions[0]!.size).toBe(16384n);
  });
});
