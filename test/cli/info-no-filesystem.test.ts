import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

// `diskwright info` where there is no ext filesystem says what is there in the user's terms —
// never dumpe2fs's "short read" or "Bad magic number in super-block": the file is too small for a
// superblock, the magic is missing, the partition table it holds (made by host sfdisk) and its
// partitions, swap (made by host mkswap) — with the command to run next. Without --partition that
// is a note after the image facts (exit 0, raw as qcow2); in a partition it named, an error.

const SBIN = { PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
let dir: string;
beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  await requireTool('mkswap', 'util-linux');
  dir = await tempDir('info-nofs-');
});

async function info(...args: string[]): Promise<{ code: number; line: string; hint: string; stdout: string }> {
  const r = await runInProcess(['info', ...args]);
  const [line = '', hint = ''] = r.stderr.split('\n');
  expect(r.stderr).not.toMatch(/short read|dumpe2fs|super-block/);
  // The image facts, and nothing of a filesystem, exactly when there is no --partition.
  if (args.includes('--partition') || args.includes('-p')) expect(r.stdout).toBe('');
  else expect(r.stdout).toMatch(/^image: .*\nfile format: raw\nvirtual size: /);
  return { code: r.code, line, hint, stdout: r.stdout };
}

describe('info on a file without an ext2/3/4 filesystem', () => {
  it('names a file too small for a superblock, not a short read', async () => {
    const tiny = join(dir, 'tiny.bin');
    await writeFile(tiny, Buffer.alloc(1000, 7));
    const r = await info(tiny);
    expect(r.code).toBe(0);
    expect(r.line).toBe(`diskwright: note: no ext2/3/4 filesystem in ${tiny}: ${tiny} is only 1000 bytes, too small for a superblock at byte 1024`);
  });

  it('says the superblock magic is missing, and names what is at its place', async () => {
    const junk = join(dir, 'junk.img');
    await writeFile(junk, Buffer.alloc(1 << 20, 0x41));
    const r = await info(junk);
    expect(r.code).toBe(0);
    expect(r.line).toBe(`diskwright: note: no ext2/3/4 filesystem in ${junk}: no superblock at byte 1024 (0x4141 where ext keeps 0xef53)`);
  });

  it('names the partition table of a disk and its partitions, and says to pass --partition', async () => {
    for (const label of ['dos', 'gpt']) {
      const disk = join(dir, `${label}.img`);
      await execa('truncate', ['-s', '32M', disk]);
      const script =
        label === 'dos'
          ? 'label: dos\nd1 : start=2048, size=8192, type=83\nd2 : start=10240, size=16384, type=5\nd5 : start=12288, size=4096, type=82\n'
          : 'label: gpt\n2048,8192\n,4096\n';
      await execa('sfdisk', ['-q', disk], { input: script, env: SBIN });
      const r = await info(disk);
      expect(r.code).toBe(0);
      expect(r.line).toContain(`no ext2/3/4 filesystem in ${disk}: no superblock at byte 1024; it holds a ${label} partition table with partitions ${label === 'dos' ? '1, 2, 5' : '1, 2'}`);
      expect(r.hint).toContain(`--partition N (\`diskwright partitions ${disk}\` lists them)`);
      // An empty partition: its byte, no table talk.
      const p1 = await info(disk, '--partition', '1');
      expect(p1.code).toBe(1);
      expect(p1.line).toContain(`no ext2/3/4 filesystem in partition 1 of ${disk}: no superblock at byte ${1048576 + 1024} (0x0000 where ext keeps 0xef53)`);
    }
  });

  it('shows a partitioned raw disk like its qcow2: the image facts of qemu-img info, the note, exit 0', async () => {
    await requireTool('qemu-img', 'qemu-utils');
    const disk = join(dir, 'ext-p1.img');
    await execa('truncate', ['-s', '48M', disk]);
    await execa('sfdisk', ['-q', disk], { input: 'label: dos\nstart=2048, type=83\n', env: SBIN });
    await execa('mkfs.ext4', ['-q', '-F', '-E', `offset=${2048 * 512}`, disk, '47M'], { env: SBIN });
    const qcow2 = join(dir, 'ext-p1.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', disk, qcow2]);
    const note = (image: string): string => `diskwright: note: no ext2/3/4 filesystem in ${image}: no superblock at byte 1024; it holds a dos partition table with partition 1`;
    for (const image of [disk, qcow2]) {
      const oracle = JSON.parse((await execa('qemu-img', ['info', '--output=json', image])).stdout) as Record<string, unknown>;
      const text = await runInProcess(['info', image]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain(`file format: ${oracle.format}\nvirtual size: 48.0 MiB (${oracle['virtual-size']} bytes)\n`);
      expect(text.stderr.split('\n')[0]).toBe(note(image));
      const json = await runInProcess(['info', image, '--json']);
      expect(json.code).toBe(0);
      const ours = JSON.parse(json.stdout) as { imageInfo: Record<string, unknown>; note: string; fields?: unknown };
      expect(ours.imageInfo).toMatchObject({ filename: image, format: oracle.format, 'virtual-size': oracle['virtual-size'], 'actual-size': oracle['actual-size'] });
      expect(ours.note).toBe(note(image).slice('diskwright: note: '.length));
      expect(ours.fields).toBeUndefined();
      // The filesystem itself is one --partition away.
      expect(JSON.parse((await runInProcess(['info', image, '-p', '1', '--json'])).stdout)).toMatchObject({ kind: 'ext4', partition: 1 });
    }
  });

  it('recognises swap space, in a file and in a logical partition', async () => {
    const swap = join(dir, 'swap.img');
    await execa('truncate', ['-s', '1M', swap]);
    await execa('mkswap', ['-q', swap], { env: SBIN });
    expect((await info(swap)).line).toContain(`no ext2/3/4 filesystem in ${swap}: no superblock at byte 1024; it holds Linux swap space`);
    const disk = join(dir, 'dos.img');
    expect((await runInProcess(['mkfs', disk, '-p', '5', '--type', 'swap', '--force'])).code).toBe(0);
    expect((await info(disk, '-p', '5')).line).toContain(`no ext2/3/4 filesystem in partition 5 of ${disk}: no superblock at byte`);
    expect((await info(disk, '-p', '5')).line).toContain('; it holds Linux swap space');
  });
});
