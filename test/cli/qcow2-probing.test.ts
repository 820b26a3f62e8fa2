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

describe('create --backing never records a format guess', () => {
  it('a backing file that only looks like a qcow2 is refused unless --backing-format says so, and its backing file is never opened', async () => {
    const disk = join(dir, 'guest-raw.img');
    writeFileSync(disk, Buffer.alloc(8 * 1024 * 1024));
    plantQcow2Header(disk, sentinel, dir);
    const overlay = join(dir, 'over-guest.qcow2');
    const refused = await tracedCli(dir, ['create', overlay, '--format', 'qcow2', '--backing', disk]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/looks like a qcow2 image, but nothing says it is one.*\[E_UNTRUSTED_BACKING\]/);
    expect(refused.stderr).toMatch(/--backing-format qcow2/);
    expect(refused.trace).not.toContain(sentinel);
    expect(() => readFileSync(overlay)).toThrow();
    // Read as what it is, a raw disk: the overlay shows its bytes, header and all, and nothing else.
    expect((await runInProcess(['create', overlay, '--format', 'qcow2', '--backing', disk, '--backing-format', 'raw'])).code).toBe(0);
    const flat = join(dir, 'over-guest.raw');
    const converted = await tracedCli(dir, ['convert', overlay, flat]);
    expect(converted.code).toBe(0);
    expect(converted.trace).not.toContain(sentinel);
    expect(Buffer.compare(readFileSync(flat), readFileSync(disk))).toBe(0);
  });

  it('a qcow2 diskwright recorded, or one named with --backing-format qcow2, is taken with its chain', async () => {
    const base = join(dir, 'base.raw');
    writeFileSync(base, Buffer.alloc(1024 * 1024, 7));
    const mid = join(dir, 'mid.qcow2');
    expect((await runInProcess(['create', mid, '--format', 'qcow2', '--backing', base, '--backing-format', 'raw'])).code).toBe(0);
    const top = join(dir, 'top.qcow2');
    expect((await runInProcess(['create', top, '--format', 'qcow2', '--backing', mid])).code).toBe(0);
    // A qemu-made qcow2 carries no record: --backing-format qcow2 is the user's word for it.
    const foreign = join(dir, 'foreign-mid.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', foreign]);
    const top2 = join(dir, 'top2.qcow2');
    const guessed = await runInProcess(['create', top2, '--format', 'qcow2', '--backing', foreign]);
    expect(guessed.stderr).toMatch(/E_UNTRUSTED_BACKING/);
    expect((await runInProcess(['create', top2, '--format', 'qcow2', '--backing', foreign, '--backing-format', 'qcow2'])).code).toBe(0);
    for (const image of [top, top2]) {
      const out = join(dir, `${image.endsWith('2.qcow2') ? 'b' : 'a'}-flat.raw`);
      expect((await runInProcess(['convert', image, out])).code).toBe(0);
      expect(Buffer.compare(readFileSync(out), readFileSync(base))).toBe(0);
    }
  });
});
