import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { splitBatchLine } from '../../src/cli/commands/fs.js';
import { runBin, runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { hostCat, hostFsck, hostStat, makeExtImage, sha256 } from '../unit/ext/ext-images.js';

let dir: string;
beforeAll(async () => {
  await requireTool('debugfs', 'e2fsprogs');
  dir = await tempDir();
});

let counter = 0;
async function freshImage(): Promise<string> {
  const image = join(dir, `batch${counter++}.img`);
  await makeExtImage(image, 'ext4');
  return image;
}

describe('diskwright fs batch', () => {
  it('applies every line in one session, checked with host debugfs and e2fsck', async () => {
    const image = await freshImage();
    const motd = join(dir, 'my motd');
    await writeFile(motd, 'welcome\n');
    const script = join(dir, 'edits.txt');
    await writeFile(
      script,
      [
        '# the edits of one instance',
        'mkdir /etc/ssh /opt/app/bin --parents --mode 0700',
        `put "${motd}" /etc/motd --mode 0640 --uid 7 --gid 8`,
        "ln 'motd' /etc/motd.link",
        '',
        'chmod 0600 /etc/motd',
        'chown 9 /etc/motd',
        'mkdir /gone',
        'rm -r /gone',
      ].join('\n'),
    );
    const result = await runInProcess(['fs', 'batch', image, script, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ image, operations: 7 });
    expect((await hostCat(image, '/etc/motd')).toString()).toBe('welcome\n');
    expect(await hostStat(image, '/etc/motd')).toMatchObject({ mode: 0o600, uid: 9, gid: 8 });
    expect(await hostStat(image, '/opt/app/bin')).toMatchObject({ mode: 0o700 });
    const fsck = await hostFsck(image);
    expect(fsck.exitCode, fsck.output).toBe(0);
  });

  it('reads the script from stdin', async () => {
    const image = await freshImage();
    const result = await runBin(['fs', 'batch', image, '-'], { input: 'mkdir /srv\nmkdir /srv/www\n' });
    expect(result.code, result.stderr).toBe(0);
    expect(await hostStat(image, '/srv/www')).toMatchObject({ mode: 0o755 });
  });

  it('writes nothing when a later line fails, and names that line', async () => {
    const image = await freshImage();
    const before = await sha256(image);
    const script = join(dir, 'fails.txt');
    await writeFile(script, 'mkdir /made\nrm /no/such/file\n');
    const result = await runInProcess(['fs', 'batch', image, script]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/fails\.txt:2: rm: .*nothing was written/);
    expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    expect(await sha256(image)).toBe(before);
  });

  it('refuses a bad line before opening the image, naming the line', async () => {
    const image = await freshImage();
    const before = await sha256(image);
    const script = join(dir, 'bad.txt');
    for (const [line, message] of [
      ['format /', /bad\.txt:2: unknown operation `format`/],
      ['chmod 999 /etc', /bad\.txt:2: .*MODE/],
      ['put /nonexistent/host/file /x', /bad\.txt:2: host path \/nonexistent\/host\/file not found/],
      ['mkdir /x --mode', /bad\.txt:2: .*--mode needs a value/],
      ["mkdir '/unterminated", /bad\.txt:2: unterminated ' quote/],
    ] as const) {
      await writeFile(script, `mkdir /fine\n${line}\n`);
      const result = await runInProcess(['fs', 'batch', image, script]);
      expect(result.code, line).not.toBe(0);
      expect(result.stderr, line).toMatch(message);
    }
    expect(await sha256(image)).toBe(before);
  });
});

describe('splitBatchLine', () => {
  it('splits words like a shell does for plain arguments, never interpreting anything', () => {
    expect(splitBatchLine('put  a\\ b "c d" \'$HOME e\'')).toEqual(['put', 'a b', 'c d', '$HOME e']);
    expect(splitBatchLine("mkdir '' x")).toEqual(['mkdir', '', 'x']);
    expect(splitBatchLine('rm "a\\"b"')).toEqual(['rm', 'a"b']);
    expect(() => splitBatchLine('rm "open')).toThrow(/unterminated/);
    expect(() => splitBatchLine('rm x\\')).toThrow(/backslash/);
  });
});
