import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { VirtRunner } from '../../src/virt/index.js';

export const TOOL_ENV = { PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };

export const INTERFACES = `auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
    address ADDRESS-TMPL
    netmask NETMASK-TMPL
    gateway GATEWAY-TMPL
`;

/**
 * A small template like `template make` produces: host `mke2fs -d` of a tree with the article's
 * placeholders, a manifest beside it, and a dummy kernel/initrd pair.
 */
export async function makeTemplate(dir: string, options: { size?: string; type?: string; bigFileBytes?: number } = {}): Promise<{ template: string; kernel: string; initrd: string }> {
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'etc/network'), { recursive: true });
  await writeFile(join(tree, 'etc/hostname'), 'HOSTNAME-TMPL\n');
  await writeFile(join(tree, 'etc/resolv.conf'), 'nameserver NAMESERVER-TMPL\n');
  await writeFile(join(tree, 'etc/network/interfaces'), INTERFACES, { mode: 0o640 });
  await writeFile(join(tree, 'etc/motd'), 'untouched ADDRESS-TMPL mention outside the manifest\n');
  if (options.bigFileBytes) {
    await mkdir(join(tree, 'usr'), { recursive: true });
    await writeFile(join(tree, 'usr/blob'), randomBytes(options.bigFileBytes));
  }
  const template = join(dir, 'debian-tmpl');
  await execa('mke2fs', ['-q', '-F', '-t', options.type ?? 'ext3', '-d', tree, template, options.size ?? '32M'], { env: TOOL_ENV });
  const kernel = join(dir, 'vmlinuz-6.1.0-test');
  const initrd = join(dir, 'initrd.img-6.1.0-test');
  await writeFile(kernel, 'kernel');
  await writeFile(initrd, 'initrd');
  await writeFile(
    `${template}.diskwright.json`,
    JSON.stringify({
      version: 1,
      createdAt: new Date(0).toISOString(),
      source: { disk: join(dir, 'seed.img'), partition: 1, start: 2048, sectors: 65536, sectorSize: 512 },
      filesystem: { kind: options.type ?? 'ext3', uuid: '00000000-0000-4000-8000-000000000000', blockSize: 4096, blocksCount: 8192 },
      operations: [{ name: 'hostname', status: 'applied' }],
      files: [
        { path: '/etc/hostname', placeholders: ['HOSTNAME-TMPL'] },
        { path: '/etc/resolv.conf', placeholders: ['NAMESERVER-TMPL'] },
        { path: '/etc/network/interfaces', placeholders: ['ADDRESS-TMPL', 'NETMASK-TMPL', 'GATEWAY-TMPL'] },
      ],
      kernel: { version: '6.1.0-test', kernel, initrd },
    }),
  );
  return { template, kernel, initrd };
}

export async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export async function debugfsCat(image: string, path: string): Promise<string> {
  return (await execa('debugfs', ['-R', `cat ${path}`, image], { env: TOOL_ENV })).stdout;
}

export async function dumpe2fsHeader(image: string): Promise<Record<string, string>> {
  const { stdout } = await execa('dumpe2fs', ['-h', image], { env: TOOL_ENV });
  const fields: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([^:]+):\s+(.*)$/.exec(line);
    if (m) fields[m[1]!.trim()] = m[2]!.trim();
  }
  return fields;
}

/**
 * Byte positions of the primary group descriptors and of every bitmap e2fsck reads, per host
 * dumpe2fs: a group flagged BLOCK_UNINIT / INODE_UNINIT has that bitmap computed, not read.
 */
export async function dumpe2fsGroupBlocks(image: string): Promise<{ what: string; position: number }[]> {
  const { stdout } = await execa('dumpe2fs', [image], { env: TOOL_ENV });
  const blockSize = Number(/^Block size:\s+(\d+)/m.exec(stdout)?.[1]);
  const out: { what: string; position: number }[] = [];
  let flags = '';
  for (const line of stdout.split('\n')) {
    if (/^Group \d+:/.test(line)) flags = line;
    const m = /(Block bitmap|Inode bitmap|Group descriptors) at (\d+)/.exec(line);
    if (!m) continue;
    if (m[1] === 'Group descriptors' && !line.includes('Primary superblock')) continue;
    if (m[1] === 'Block bitmap' && flags.includes('BLOCK_UNINIT')) continue;
    if (m[1] === 'Inode bitmap' && flags.includes('INODE_UNINIT')) continue;
    out.push({ what: m[1]!, position: Number(m[2]) * blockSize });
  }
  return out;
}

export async function hostFsck(image: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa('e2fsck', ['-fn', image], { env: TOOL_ENV, reject: false });
  return { exitCode: r.exitCode ?? -1, output: `${r.stdout}${r.stderr}` };
}

/**
 * A fake libvirt: records every call; `virt-install` defines the domain, `virsh start` starts it.
 * `fail` makes one sub-command fail (after its effect, for virt-install with `defineThenFail`).
 */
export function fakeLibvirt(options: { reachable?: boolean; fail?: string; defineThenFail?: boolean; existing?: Record<string, string[]> } = {}) {
  const calls: { tool: string; argv: string[] }[] = [];
  const domains = new Map<string, { state: string; macs: string[] }>(
    Object.entries(options.existing ?? {}).map(([name, macs]) => [name, { state: 'running', macs }]),
  );
  const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' });
  const err = (message: string) => ({ exitCode: 1, stdout: '', stderr: `error: ${message}` });
  const runner: VirtRunner = async (tool, argv) => {
    calls.push({ tool, argv: [...argv] });
    if (options.reachable === false) return { exitCode: 127, stdout: '', stderr: `${tool}: command not found` };
    const args = argv[0] === '--connect' ? argv.slice(2) : [...argv];
    if (tool === 'virt-install') {
      if (args[0] === '--version') return ok('4.1.0\n');
      const name = args[args.indexOf('--name') + 1]!;
      if (options.fail === 'virt-install' && !options.defineThenFail) return err('virt-install exploded');
      domains.set(name, { state: 'shut off', macs: [args[args.indexOf('--mac') + 1]!] });
      return options.fail === 'virt-install' ? err('post-define failure') : ok();
    }
    const [command, ...rest] = args;
    if (options.fail === command) return err(`${command} failed on purpose`);
    const name = rest.find((a) => !a.startsWith('-'));
    switch (command) {
      case 'list':
        return ok([...domains.keys()].join('\n'));
      case 'domstate':
        return domains.has(name!) ? ok(`${domains.get(name!)!.state}\n`) : err(`failed to get domain '${name}'`);
      case 'domiflist':
        return ok(domains.get(name!)?.macs.map((m) => ` vnet0  bridge  br0  virtio  ${m}`).join('\n') ?? '');
      case 'domblklist':
        return ok('');
      case 'start':
        domains.get(name!)!.state = 'running';
        return ok();
      case 'undefine':
        domains.delete(name!);
        return ok();
      default:
        return ok();
    }
  };
  return { runner, calls, domains };
}

/** A libvirt that knows one shut-off domain `web1` whose only disk is `disk` (for destroy). */
export function libvirtWithDisk(disk: string): VirtRunner {
  return async (_tool, argv) => {
    const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' });
    if (argv[0] === 'domstate') return ok('shut off\n');
    if (argv[0] === 'domblklist') return ok(` Type   Device   Target   Source\n------------------------------------\n file   disk     vda      ${disk}\n`);
    if (argv[0] === 'vol-delete') return { exitCode: 1, stdout: '', stderr: 'error: no storage vol with matching path' };
    return ok();
  };
}
