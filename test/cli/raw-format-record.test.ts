import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { recordedFormatOf } from '../../src/disk/format-record.js';
import { createQcow2 } from '../../src/disk/qcow2/index.js';
import { runInProcess } from '../helpers/cli.js';
import { plantQcow2Header, tracedCli } from '../helpers/qcow2.js';
import { makeDiskFromTree, writeDebianLikeTree } from '../helpers/debian-like.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { makeTemplate } from '../oracle/instance-helpers.js';

// Issue 10's security rule: every raw image diskwright creates carries user.diskwright.format=raw,
// so a qcow2 header its guest later writes into sector 0 (naming a host file as backing file) is
// never believed. strace shows the named file is never opened.

const SBIN_ENV = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
let dir: string;

function recorded(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    return recordedFormatOf(fd);
  } finally {
    closeSync(fd);
  }
}

beforeAll(async () => {
  await requireTool('strace', 'strace');
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('raw-record-');
}, 60_000);

describe('every raw image diskwright creates carries user.diskwright.format=raw', () => {
  /** Each maker returns the raw output path it created. */
  const makers: [string, () => Promise<string>][] = [
    [
      'create',
      async () => {
        const out = join(dir, 'created.img');
        expect((await runInProcess(['create', out, '--size', '8M'])).code).toBe(0);
        return out;
      },
    ],
    [
      'mkfs (a new filesystem image)',
      async () => {
        const out = join(dir, 'mkfs.img');
        const r = await runInProcess(['mkfs', out, '--type', 'ext4', '--size', '16M']);
        expect(r.code, r.stderr).toBe(0);
        return out;
      },
    ],
    [
      'disk build',
      async () => {
        const out = join(dir, 'built.img');
        const layout = join(dir, 'layout.sfdisk');
        writeFileSync(layout, 'label: dos\nstart=2048, type=83\n');
        const r = await runInProcess(['disk', 'build', out, '--size', '32M', '--layout', layout, '--fs', '1=ext4']);
        expect(r.code, r.stderr).toBe(0);
        return out;
      },
    ],
    [
      'template make',
      async () => {
        const root = join(dir, 'deb-root');
        await writeDebianLikeTree(root, { modernNetworking: true });
        const disk = join(dir, 'debbase.img');
        await makeDiskFromTree(root, disk, { type: 'ext4' });
        const out = join(dir, 'tmpl');
        const r = await runInProcess(['template', 'make', disk, '-p', '1', '-o', out]);
        expect(r.code, r.stderr).toBe(0);
        return out;
      },
    ],
    [
      'instance create --disk-only',
      async () => {
        const { template } = await makeTemplate(join(dir, 'inst'), { size: '16M' });
        const images = join(dir, 'images');
        mkdirSync(images, { recursive: true });
        const env = { ...SBIN_ENV, XDG_CONFIG_HOME: join(dir, 'xdg') };
        const r = await runInProcess(['instance', 'create', '10.0.0.5', 'web1', '--template', template, '--images-dir', images, '--disk', '24M', '--disk-only'], { env });
        expect(r.code, r.stderr).toBe(0);
        return join(images, 'web1-disk0');
      },
    ],
    [
      'partition (rewrites the table of an image diskwright made)',
      async () => {
        const out = join(dir, 'parted.img');
        expect((await runInProcess(['create', out, '--size', '8M'])).code).toBe(0);
        const script = join(dir, 'p.sfdisk');
        writeFileSync(script, 'label: gpt\nstart=2048, size=4MiB\n');
        const r = await runInProcess(['partition', out, script]);
        expect(r.code, r.stderr).toBe(0);
        return out;
      },
    ],
    [
      'convert -O raw',
      async () => {
        const source = join(dir, 'conv-src.qcow2');
        createQcow2(source, { size: 4 * 1024 * 1024 });
        const out = join(dir, 'converted.img');
        const r = await runInProcess(['convert', source, out, '-O', 'raw']);
        expect(r.code, r.stderr).toBe(0);
        return out;
      },
    ],
  ];

  it.each(makers)('%s: its output is recorded raw, and a guest-written qcow2 header naming /etc/shadow is never followed', { timeout: 60_000 }, async (_name, make) => {
    const out = await make();
    expect(recorded(out)).toBe('raw');
    const backing = '/etc/shadow';
    plantQcow2Header(out, backing, dir);
    // The record survives the guest's write; readers take the file as raw and never open the named file.
    expect(recorded(out)).toBe('raw');
    for (const args of [['info', out, '--json'], ['convert', out, `${out}.copy`]]) {
      const run = await tracedCli(dir, args);
      expect(run.trace, `${args[0]} opened ${backing}`).not.toContain(backing);
      expect(run.stderr).not.toMatch(/E_UNTRUSTED_BACKING|backing/);
    }
    // The copy is the raw bytes, header and all: nothing was reinterpreted.
    expect(Buffer.compare(readFileSync(`${out}.copy`), readFileSync(out))).toBe(0);
  });
});
