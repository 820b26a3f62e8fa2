/**
 * Oracle: `diskwright partition` (writePartitionTable) must write the same bytes as host
 * `sfdisk IMAGE < SCRIPT` (util-linux 2.38) on the same blank image, and `sfdisk --json` must
 * print the same for both. Scripts cover what util-linux's own sfdisk tests exercise: dos with
 * logical partitions, GPT with names, attributes and uuids, unsorted lines, gaps, sizes with
 * units, default sizes, tiny disks, the positional form and `sfdisk --dump` output fed back.
 */
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { writePartitionTable } from '../../src/partition/index.js';
import { isDiskwrightError } from '../../src/errors.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
let dir = '';
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('diskwright-oracle-partition-write-');
});

async function blank(name: string, size: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, size);
  return path;
}

async function sfdiskJson(path: string): Promise<string> {
  return (await execa('sfdisk', ['--json', path], { env, cwd: dir })).stdout;
}

/** Partitions two blank images, one with sfdisk and one with diskwright; both must be identical. */
async function expectSameAsSfdisk(size: number, script: string): Promise<void> {
  const theirs = await blank('theirs.img', size);
  const ours = await blank('ours.img', size);
  await execa('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', theirs], { env, input: script });
  await writePartitionTable(ours, script);
  // cmp -l lists differing bytes (1-based offsets): empty means byte-identical images.
  const cmp = await execa('cmp', ['-l', theirs, ours], { reject: false });
  expect(cmp.stdout.split('\n').slice(0, 8).join('\n')).toBe('');
  expect(cmp.exitCode).toBe(0);
  const [ja, jb] = await Promise.all([sfdiskJson(theirs), sfdiskJson(ours)]);
  expect(jb.replaceAll('ours.img', 'IMG')).toBe(ja.replaceAll('theirs.img', 'IMG'));
}

const GPT_ID = 'label-id: 9A2F5E1C-3B4D-4E6F-8A7B-1C2D3E4F5A6B';
const uuid = (n: number): string => `1B4E28BA-2FA1-11D2-883F-B9A76100000${n}`;

describe('partition writes the bytes sfdisk writes', () => {
  const cases: [string, number, string][] = [
    ["the article's seed layout: bootable root, extended, logical swap", 64 * MiB, 'label: dos\nlabel-id: 0x20130b0b\nstart=2048, size=98304, type=83, bootable\nstart=100352, size=30720, type=5\nstart=102400, type=82\n'],
    ['dos with default starts and sizes in MiB, last partition the rest', 1 * GiB, 'label: dos\nlabel-id: 0x1234abcd\nsize=100M, type=L\nsize=200MiB, type=S\n,+,L\n'],
    ['dos with an extended partition holding several logical partitions with gaps', 1 * GiB, 'label: dos\nlabel-id: 0xdeadbeef\nstart=2048, size=204800, type=83\nstart=206848, size=1800000, type=5\nstart=210000, size=1000, type=82\nstart=300000, size=20000, type=83\nstart=500000, type=8e\n'],
    ['dos logical partitions with default placement', 1 * GiB, 'label: dos\nlabel-id: 0x00000001\nsize=64M\ntype=E\nsize=32M\nsize=32M, type=S\nsize=16M, type=b\n'],
    ['dos lines out of disk order', 512 * MiB, 'label: dos\nlabel-id: 0x0badcafe\nstart=400000, size=20000, type=83\nstart=2048, size=100000, type=c, bootable\nstart=200000, size=50000, type=7\n'],
    ['dos given as an sfdisk --dump with device names and partition numbers', 256 * MiB, 'label: dos\nlabel-id: 0xa1b2c3d4\ndevice: /dev/sdz\nunit: sectors\nsector-size: 512\n\n/dev/sdz1 : start=        2048, size=      204800, type=83, bootable\n/dev/sdz2 : start=      206848, size=      200000, type=5\n/dev/sdz5 : start=      208896, size=       50000, type=82\n/dev/sdz6 : start=      262144, size=       40000, type=83\n'],
    ['dos in the positional short form', 256 * MiB, 'label: dos\nlabel-id: 0x11111111\n2048,100000,83,*\n,50000,S\n;\n'],
    ['dos on a tiny disk (no 1 MiB alignment)', 3 * MiB, 'label: dos\nlabel-id: 0x22222222\nsize=1000\n,\n'],
    ['gpt with names, attributes and uuids', 1 * GiB, `label: gpt\n${GPT_ID}\nstart=2048, size=204800, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=${uuid(1)}, name="EFI system", attrs="RequiredPartition LegacyBIOSBootable"\nsize=512M, type=L, uuid=${uuid(2)}, name=root, attrs="GUID:60,63"\ntype=S, uuid=${uuid(3)}, name=swap\n`],
    ['gpt with unsorted partitions and gaps', 1 * GiB, `label: gpt\n${GPT_ID}\nstart=1000000, size=100000, uuid=${uuid(1)}\nstart=4096, size=10000, uuid=${uuid(2)}, type=linux\nstart=500000, size=20000, uuid=${uuid(3)}, type=home\nsize=10M, uuid=${uuid(4)}\n`],
    ['gpt dump form with first-lba, last-lba and table-length', 256 * MiB, `label: gpt\n${GPT_ID}\ndevice: x.img\nunit: sectors\nfirst-lba: 34\nlast-lba: 500000\ntable-length: 64\nsector-size: 512\n\nx.img1 : start=34, size=2014, type=21686148-6449-6E6F-744E-656564454649, uuid=${uuid(1)}, name="bios boot"\nx.img3 : start=4096, size=100000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=${uuid(3)}\n`],
    ['gpt on a disk whose size is not a MiB multiple, last partition the rest', 100 * MiB + 7 * 512, `label: gpt\n${GPT_ID}\nsize=20M, uuid=${uuid(1)}\n- - S\n`],
  ];
  for (const [title, size, script] of cases) {
    it(`matches sfdisk for ${title}`, async () => {
      await expectSameAsSfdisk(size, script.includes('- - S') ? script.replace('- - S\n', `size=-, type=S, uuid=${uuid(2)}\n`) : script);
    });
  }
});

describe('partition rejects scripts sfdisk rejects, naming the line', () => {
  const bad: [string, string, RegExp][] = [
    ['overlapping dos partitions', 'label: dos\nstart=2048, size=100000\nstart=50000, size=1000\n', /line 3: start sector 50000 is out of range/],
    ['a dos partition beyond the disk', 'label: dos\nstart=2048, size=99999999\n', /line 2: .*does not fit/],
    ['a fifth primary', 'label: dos\nsize=1M\nsize=1M\nsize=1M\nsize=1M\nsize=1M\n', /line 6: all four primary partitions are in use/],
    ['an unknown dos type', 'label: dos\nstart=2048, size=1000, type=zz\n', /line 2: type `zz` is not a dos type/],
    ['an unknown GPT type', 'label: gpt\nsize=1M, type=83\n', /line 2: type `83` is not a GPT type/],
    ['a malformed line', 'label: dos\nstart=2048, size=12x\n', /line 2: size `12x` is not a number/],
    ['an unknown field', 'label: gpt\nstart=2048, colour=red\n', /line 2: unknown field `colour=red`/],
    ['a logical partition whose EBR would overlap the previous one', 'label: dos\nstart=2048, size=20480\nstart=22528, size=40000, type=5\nstart=24576, size=5000\nstart=30000, size=4000\n', /line 5: start sector 30000 is out of range/],
    ['overlapping GPT partitions', 'label: gpt\nstart=2048, size=10000\nstart=4096, size=10\n', /line 3: sector 4096 is already used/],
    ['an unsupported label', 'label: sun\n', /line 1: label `sun` is not supported/],
  ];
  for (const [title, script, message] of bad) {
    it(`rejects ${title} and leaves the image untouched`, async () => {
      const path = await blank('bad.img', 64 * MiB);
      const error = await writePartitionTable(path, script).catch((e: unknown) => e);
      expect(isDiskwrightError(error) && error.code).toBe('E_SCRIPT');
      expect((error as Error).message).toMatch(message);
      const bytes = await readFile(path);
      expect(bytes.subarray(0, 1024).every((b) => b === 0)).toBe(true);
      // sfdisk refuses the same script — except where it is laxer: it writes an unknown dos type as
      // type 0, silently drops lines after the fourth primary, and knows sun labels.
      const result = await execa('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', path], { env, input: script, reject: false });
      if (!/unknown dos type|fifth primary|unsupported label/.test(title)) expect(result.exitCode).not.toBe(0);
    });
  }
});
