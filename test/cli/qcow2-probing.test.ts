import { execa } from 'execa';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { plantQcow2Header, tracedCli } from '../helpers/qcow2.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let sentinel: string;

beforeAll(async () => {
  await requireTool('strace', 'strace');
  dir = await tempDir('qcow2-probe-');
  sentinel = join(dir, 'host-secret');
  writeFileSync(sentinel, 'not for guests\n');
});

describe('a raw disk that carries a qcow2 header never makes diskwright open its backing file', () => {
  it('a raw disk diskwright made stays raw: info, partitions and convert read it as raw and never touch /etc/shadow or the sentinel', async () => {
    const disk = join(dir, 'instance.img');
    expect((await runInProcess(['create', disk, '--size', '8M'])).code).toBe(0);
    for (const backing of ['/etc/shadow', sentinel]) {
      plantQcow2Header(disk, backing, dir);
      const info = await tracedCli(dir, ['info', disk, '--json']);
      expect(info.trace).not.toContain(backing);
      // Read as raw: its image facts and a note that no filesystem is there (no backing-file note either).
      expect({ code: info.code, note: /^diskwright: note: no ext2\/3\/4 filesystem in .*: no superblock at byte 1024/.test(info.stderr) }).toEqual({ code: 0, note: true });
      const convert = await tracedCli(dir, ['convert', disk, join(dir, `copy-${backing.length}.raw`), '--json']);
      expect(convert.trace).not.toContain(backing);
      expect(convert.code).toBe(0);
      // The copy is the raw disk, header bytes and all: nothing was reinterpreted.
      expect(Buffer.compare(readFileSync(join(dir, `copy-${backing.length}.raw`)), readFileSync(disk))).toBe(0);
      const partitions = await tracedCli(dir, ['partitions', disk, '--json']);
      expect(partitions.trace).not.toContain(backing);
    }
  });

  it('a copy without diskwright\'s record is probed as qcow2 but its backing file is refused, not opened', async () => {
    const disk = join(dir, 'foreign.img');
    writeFileSync(disk, Buffer.alloc(8 * 1024 * 1024));
    plantQcow2Header(disk, sentinel, dir);
    const copy = join(dir, 'foreign-copy.img');
    copyFileSync(disk, copy);
    for (const args of [['convert', copy, join(dir, 'x.raw')], ['info', copy], ['convert', copy, join(dir, 'y.raw'), '--format', 'raw']]) {
      const run = await tracedCli(dir, args);
      expect(run.trace).not.toContain(sentinel);
      if (args.includes('--format')) expect(run.code).toBe(0);
      else if (args[0] === 'convert') expect(run.stderr).toMatch(/E_UNTRUSTED_BACKING/);
    }
    // Only an explicit --format qcow2 follows it — the user's decision, and then it is read.
    const trusted = await tracedCli(dir, ['convert', copy, join(dir, 'z.raw'), '--format', 'qcow2']);
    expect(trusted.trace).toContain(sentinel);
  });
});

describe('diskwright records the format of the raw disks it makes', () => {
  it('extract output carries user.diskwright.format=raw, so a qcow2 header its guest writes later is not believed', async () => {
    const { recordedFormatOf } = await import('../../src/disk/format-record.js');
    const { openSync, closeSync } = await import('node:fs');
    const disk = join(dir, 'src.img');
    writeFileSync(disk, Buffer.alloc(4 * 1024 * 1024));
    await execa('sfdisk', ['--quiet', disk], { input: 'label: dos\nstart=2048, type=83\n', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    const out = join(dir, 'p1.img');
    expect((await runInProcess(['extract', disk, '-p', '1', '-o', out])).code).toBe(0);
    const fd = openSync(out, 'r');
    try {
      expect(recordedFormatOf(fd)).toBe('raw');
    } finally {
      closeSync(fd);
    }
    plantQcow2Header(out, sentinel, dir);
    const run = await tracedCli(dir, ['convert', out, join(dir, 'p1-copy.raw')]);
    expect(run.code).toBe(0);
    expect(run.trace).not.toContain(sentinel);
  });
});
