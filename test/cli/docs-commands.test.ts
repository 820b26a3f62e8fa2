/**
 * Every `diskwright …` line in the code blocks of README.md and docs/*.md, pasted as a user would:
 * each is parsed against its command's option spec, and all but a few (named below, with why) are
 * run on a fixture — a fresh copy of a directory holding the files the docs name — and must exit 0.
 */
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli/args.js';
import { listCommands, type CommandEntry } from '../../src/cli/registry.js';
import { runInProcess } from '../helpers/cli.js';
import { makeDiskFromTree, writeDebianLikeTree } from '../helpers/debian-like.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url);

interface DocLine {
  readonly where: string;
  readonly text: string;
  readonly argv: readonly string[];
}

/** Splits a shell line into words (quotes, backslashes), stopping at a pipe, redirect or comment. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  while (i < line.length) {
    const ch = line[i]!;
    if (ch === "'" || ch === '"') {
      const end = line.indexOf(ch, i + 1);
      if (end === -1) throw new Error(`unterminated quote in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[i + 1];
      i += 2;
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
    } else if (word === undefined && (ch === '#' || ch === '|' || ch === '>' || ch === '&' || ch === ';')) {
      break;
    } else {
      word = (word ?? '') + ch;
      i++;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

async function docLines(): Promise<DocLine[]> {
  const files = ['README.md', ...(await readdir(new URL('docs/', ROOT))).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  const out: DocLine[] = [];
  for (const file of files) {
    const lines = (await readFile(new URL(file, ROOT), 'utf8')).split('\n');
    let inBlock = false;
    for (let n = 0; n < lines.length; n++) {
      if (lines[n]!.startsWith('```')) {
        inBlock = !inBlock;
        continue;
      }
      let text = lines[n]!.replace(/^\s*\$ /, '').trim();
      if (!inBlock || !text.startsWith('diskwright ')) continue;
      const start = n + 1;
      while (/\\$/.test(text.replace(/\s+#.*$/, '')) && n + 1 < lines.length) text = `${text.replace(/\s+#.*$/, '').replace(/\\$/, '')} ${lines[++n]!.trim()}`;
      out.push({ where: `${file}:${start}`, text, argv: shellWords(text).slice(1) });
    }
  }
  return out;
}

function findEntry(commands: readonly CommandEntry[], argv: readonly string[]): { entry: CommandEntry; rest: readonly string[] } {
  const two = commands.find((c) => c.name === argv.slice(0, 2).join(' '));
  if (two) return { entry: two, rest: argv.slice(2) };
  const one = commands.find((c) => c.name === argv[0]);
  if (!one) throw new Error(`no command \`${argv.slice(0, 2).join(' ')}\``);
  return { entry: one, rest: argv.slice(1) };
}

/** Lines that are only parsed, never run here, and why. */
const PARSE_ONLY: readonly [RegExp, string][] = [
  [/^instance create 192\.168\.1\.197 jgoulah/, 'the article defaults: /var/lib/libvirt/images and a running libvirt'],
  [/^instance create (10\.0\.0\.5|192\.168\.1\.198) web1 (--dry-run|--disk-only|--nsupdate|--connect)/, 'the default template lives in /var/lib/libvirt/images (or needs ssh to a host)'],
  [/^instance create (10\.0\.0\.5|192\.168\.1\.198) web1 --ssh-key/, 'customizes an instance of the default template in /var/lib/libvirt/images; the flags run in test/e2e/debian-*.test.ts and test/unit/instance/customize.test.ts'],
  [/^instance create 10\.0\.0\.5 web1 --template/, 'defines and starts the VM: needs libvirt (the --disk-only form runs in test/cli/instance.test.ts)'],
  [/^instance create --from/, 'needs a fleet file and libvirt; test/cli/instance.test.ts runs fleets'],
  [/^instance create 192\.168\.1\.19[89] web[23] --format qcow2/, 'thin instances of the default template in /var/lib/libvirt/images; test/oracle/instance-thin.test.ts and test/e2e/boot.test.ts run them'],
  [/^instance (list|destroy)/, 'needs libvirt; test/cli/instance.test.ts runs them against a fake virsh'],
  [/^demo/, 'the demo has its own end-to-end test (test/e2e/demo.test.ts)'],
  [/^resize instance\.img --partition 1 20G/, 'grows a filesystem to 20 GiB; test/cli/resize.test.ts covers it at small sizes'],
  [/^disk build debbase\.img --size 8G/, 'builds an 8 GiB disk from a tarball; test/oracle/mkfs-from-tar.test.ts and test/e2e/debian-tarball.test.ts run disk build'],
];

let lines: DocLine[] = [];
let base = '';
let scratch = '';

beforeAll(async () => {
  lines = await docLines();
  scratch = await tempDir('diskwright-docs-lines-');
  base = join(scratch, 'base');
  await mkdir(base);
  const tree = join(base, '.tree');
  await writeDebianLikeTree(tree);
  await mkdir(join(tree, 'lib/systemd/system'), { recursive: true });
  await writeFile(join(tree, 'lib/systemd/system/serial-getty@.service'), '[Unit]\n');
  await mkdir(join(tree, 'etc/systemd/system/getty.target.wants'), { recursive: true });
  await mkdir(join(tree, 'home/user'), { recursive: true });
  await mkdir(join(tree, 'var/cache/apt/archives'), { recursive: true });
  await writeFile(join(tree, 'var/cache/apt/pkgcache.bin'), 'cache');
  await makeDiskFromTree(tree, join(base, 'debbase.img'), { type: 'ext4' });
  await cp(join(base, 'debbase.img'), join(base, 'disk.img'));
  await makeDiskFromTree(tree, join(base, 'instance.img'), { type: 'ext4', label: 'gpt' });
  for (const fs of ['root.img', 'rootfs.ext4']) expect((await runInProcess(['mkfs', join(base, fs), '--size', '48M', '--from', tree])).code).toBe(0);
  await cp(tree, join(base, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  await writeFile(join(base, 'motd'), 'Welcome\n');
  await writeFile(join(base, 'edits.txt'), '# fs batch: one commit\nmkdir /srv/www --parents\nput motd /etc/motd --mode 0644\nln /etc/motd /srv/www/motd\n');
  // docs/build.md's inputs: an sfdisk script that fits the fixture disk and the tree as tarballs.
  await writeFile(join(base, 'layout.sfdisk'), 'label: dos\nsize=16M, type=83, bootable\ntype=5\ntype=82\n');
  await execa('tar', ['-C', tree, '-cf', join(base, 'rootfs.tar'), '.']);
  await execa('xz', ['-k', '-T1', join(base, 'rootfs.tar')]);
  await execa('zstd', ['-q', '-k', join(base, 'rootfs.tar')]);
  await mkdir(join(base, 'overlay/bin'), { recursive: true });
  await writeFile(join(base, 'overlay/bin/app'), '#!/bin/sh\n', { mode: 0o755 });
  await mkdir(join(base, 'images'));
  const made = await runInProcess(['template', 'make', join(base, 'debbase.img'), '-p', '1', '-o', join(base, 'debian-tmpl'), '--kernel-dir', join(base, 'kernels')]);
  expect(made.code, made.stderr).toBe(0);
  // The qcow2 template README's `instance create --template ./debian-tmpl.qcow2` takes.
  expect((await runInProcess(['convert', join(base, 'debian-tmpl'), join(base, 'debian-tmpl.qcow2'), '-O', 'qcow2'])).code).toBe(0);
  await cp(join(base, 'debian-tmpl.diskwright.json'), join(base, 'debian-tmpl.qcow2.diskwright.json'));
}, 120_000);

describe('the command lines of README.md and docs/*.md', () => {
  it('are found (the extraction itself works)', () => {
    expect(lines.length).toBeGreaterThan(50);
    expect(lines.map((l) => l.text)).toContain('diskwright template make debbase.img -p 1 -o debian-tmpl --kernel-dir kernels/   # --ops a,b or --skip c to choose');
  });

  it('all parse against their command\'s options (no synopsis brackets, no unknown flags)', async () => {
    const commands = await listCommands();
    const problems: string[] = [];
    for (const line of lines) {
      try {
        const { entry, rest } = findEntry(commands, line.argv);
        const parsed = parseCommandLine(entry.name, rest, entry.options);
        const bracket = parsed.positionals.find((p) => /^\[|\]$/.test(p));
        if (bracket) problems.push(`${line.where}: synopsis bracket \`${bracket}\` is not pasteable`);
      } catch (error) {
        problems.push(`${line.where}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('run on the fixture and exit 0, each in a fresh copy of it', async () => {
    const commands = await listCommands();
    const failures: string[] = [];
    const home = process.cwd();
    let ran = 0;
    for (const line of lines) {
      const shown = line.argv.join(' ');
      if (PARSE_ONLY.some(([pattern]) => pattern.test(shown))) continue;
      const { entry, rest } = findEntry(commands, line.argv);
      const parsed = parseCommandLine(entry.name, rest, entry.options);
      // What the line writes must not exist yet: leave it out of this line's copy.
      const outputs = new Set<string>();
      const value = (name: string): string | undefined => (typeof parsed.values[name] === 'string' ? (parsed.values[name] as string) : undefined);
      for (const name of ['output', 'kernel-dir']) if (value(name)) outputs.add(value(name)!.replace(/\/$/, ''));
      if (entry.name === 'create' || (entry.name === 'mkfs' && value('partition') === undefined)) outputs.add(parsed.positionals[0]!);
      if (entry.name === 'fs get') outputs.add(parsed.positionals[2]!.replace(/^\.\//, ''));
      const dir = join(scratch, `line-${ran}`);
      await mkdir(dir);
      const inputs = (await readdir(base)).filter((name) => name !== '.tree' && ![...outputs].some((o) => name === o || name.startsWith(`${o}.`)));
      // coreutils cp keeps the images sparse (a few MB each instead of 60 MB).
      await execa('cp', ['-a', '--sparse=always', '--reflink=auto', ...inputs.map((n) => join(base, n)), `${dir}/`]);
      // In-process (forks pool: chdir is allowed) — the same runCli the binary runs, without a spawn.
      process.chdir(dir);
      const result = await runInProcess(line.argv).finally(() => process.chdir(home));
      ran++;
      if (result.code !== 0) failures.push(`${line.where}: \`${line.text}\` exited ${result.code}: ${result.stderr.split('\n').slice(0, 2).join(' / ')}`);
    }
    expect(failures).toEqual([]);
    expect(ran).toBeGreaterThan(40);
  }, 170_000);
});

/**
 * `--json` of every registered command, run on the same fixture: stdout is one JSON document, and
 * the same things have the same keys — `image` for the image a command reads or edits, `output`
 * for the file or directory it writes (docs/json.md). A new command without a case here fails.
 */
const JSON_CASES: Record<string, { argv: string[]; image?: string; output?: string; env?: 'fake-virsh' } | { skip: string }> = {
  demo: { skip: 'test/e2e/demo.test.ts parses `demo --json`' },
  create: { argv: ['create', 'new.img', '--size', '1M'], output: 'new.img' },
  partitions: { argv: ['partitions', 'debbase.img'] },
  partition: { argv: ['partition', 'blank.img', 'table.sfdisk'] },
  'disk build': { argv: ['disk', 'build', 'built.img', '--size', '16M', '--layout', 'table.sfdisk', '--fs', '1=ext4:overlay'], output: 'built.img' },
  recover: { argv: ['recover', 'root.img'], image: 'root.img' },
  extract: { argv: ['extract', 'debbase.img', '-p', '1', '-o', 'p1.img'], output: 'p1.img' },
  convert: { argv: ['convert', 'rootfs.ext4', 'rootfs.qcow2', '-O', 'qcow2'], output: 'rootfs.qcow2' },
  fsck: { argv: ['fsck', 'rootfs.ext4'], image: 'rootfs.ext4' },
  mkfs: { argv: ['mkfs', 'new.ext4', '--size', '8M'], output: 'new.ext4' },
  resize: { argv: ['resize', 'rootfs.ext4', '+8M'], image: 'rootfs.ext4' },
  info: { argv: ['info', 'disk.img', '-p', '1'], image: 'disk.img' },
  'fs ls': { argv: ['fs', 'ls', 'root.img', '/etc'] },
  'fs cat': { argv: ['fs', 'cat', 'root.img', '/etc/hostname'], image: 'root.img' },
  'fs put': { argv: ['fs', 'put', 'root.img', 'motd', '/etc/motd'], image: 'root.img' },
  'fs get': { argv: ['fs', 'get', 'root.img', '/etc', 'etc-copy'], image: 'root.img', output: 'etc-copy' },
  'fs rm': { argv: ['fs', 'rm', 'root.img', '/etc/inittab'], image: 'root.img' },
  'fs mkdir': { argv: ['fs', 'mkdir', 'root.img', '/srv/a', '--parents'], image: 'root.img' },
  'fs ln': { argv: ['fs', 'ln', 'root.img', '/etc/hostname', '/hn'], image: 'root.img' },
  'fs chmod': { argv: ['fs', 'chmod', 'root.img', '0600', '/etc/hostname'], image: 'root.img' },
  'fs chown': { argv: ['fs', 'chown', 'root.img', '1000:1000', '/home/user'], image: 'root.img' },
  'fs stat': { argv: ['fs', 'stat', 'root.img', '/etc/hostname'] },
  'fs batch': { argv: ['fs', 'batch', 'root.img', 'edits.txt'], image: 'root.img' },
  kernel: { argv: ['kernel', 'debbase.img', '-p', '1', '-o', 'k'], image: 'debbase.img', output: 'k' },
  'template make': { argv: ['template', 'make', 'debbase.img', '-p', '1', '-o', 't2'], output: 't2' },
  'template ops': { argv: ['template', 'ops'] },
  'template show': { argv: ['template', 'show', 'debian-tmpl'] },
  'instance create': { argv: ['instance', 'create', '10.0.0.5', 'web1', '--template', './debian-tmpl', '--images-dir', './images', '--gateway', '10.0.0.1', '--nameserver', '10.0.0.2', '--dry-run'] },
  'instance list': { argv: ['instance', 'list'], env: 'fake-virsh' },
  'instance destroy': { argv: ['instance', 'destroy', 'web1', '--keep-disk'], env: 'fake-virsh' },
};

describe('--json of every command', () => {
  it('prints one JSON document with the shared key names', async () => {
    const commands = await listCommands();
    expect(commands.map((c) => c.name).filter((name) => !(name in JSON_CASES))).toEqual([]);
    const dir = join(scratch, 'json');
    await mkdir(dir);
    await execa('cp', ['-a', '--sparse=always', ...(await readdir(base)).filter((n) => n !== '.tree').map((n) => join(base, n)), `${dir}/`]);
    await execa('truncate', ['-s', '16M', join(dir, 'blank.img')]);
    await writeFile(join(dir, 'table.sfdisk'), 'label: dos\nstart=2048, type=83\n');
    // A virsh that knows one stopped domain with no disks: enough for list and destroy.
    const virsh = join(dir, 'virsh');
    await writeFile(
      virsh,
      `#!${process.execPath}\nconst a = process.argv.slice(2).filter((x) => !x.startsWith('--connect') && !x.includes('://'));\nconst out = { list: 'web1\\n', domstate: 'shut off\\n', domiflist: ' Interface Type Source Model MAC\\n---\\n', domblklist: ' Type Device Target Source\\n---\\n' }[a[0]];\nprocess.stdout.write(out ?? '');\n`,
      { mode: 0o755 },
    );
    const problems: string[] = [];
    const home = process.cwd();
    for (const [name, spec] of Object.entries(JSON_CASES)) {
      if ('skip' in spec) continue;
      const env = spec.env === 'fake-virsh' ? { ...process.env, DISKWRIGHT_VIRSH: virsh } : process.env;
      process.chdir(dir);
      const result = await runInProcess([...spec.argv, '--json'], { env }).finally(() => process.chdir(home));
      if (result.code !== 0) {
        problems.push(`${name}: exit ${result.code}: ${result.stderr.split('\n')[0]}`);
        continue;
      }
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(result.stdout) as Record<string, unknown>;
      } catch {
        problems.push(`${name}: stdout is not one JSON document: ${result.stdout.slice(0, 80)}`);
        continue;
      }
      if (spec.image !== undefined && value.image !== spec.image) problems.push(`${name}: "image" is ${JSON.stringify(value.image)}, expected ${spec.image}`);
      if (spec.output !== undefined && value.output !== spec.output) problems.push(`${name}: "output" is ${JSON.stringify(value.output)}, expected ${spec.output}`);
      if (spec.output !== undefined && value.path === spec.output) problems.push(`${name}: uses "path" for its output file`);
    }
    expect(problems).toEqual([]);
  }, 120_000);
});
