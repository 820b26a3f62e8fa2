/**
 * Behaviour found on real libvirt (test/libvirt), pinned here with a fake libvirt that answers the
 * way libvirt 9 / virtinst 4.1 did: virt-install autostarts a storage pool for the disk directory,
 * `--cpuset=auto` fails at start without numad, a named network is not checked by virt-install.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createInstance, defaultSteps } from '../../src/instance/index.js';
import type { VirtRunner } from '../../src/virt/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { fakeLibvirt, listDir, makeTemplate } from './instance-helpers.js';

let root: string;
let template: string;
let counter = 0;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'e2fsck', 'debugfs']) await requireTool(tool, 'e2fsprogs');
  root = await tempDir('diskwright-instance-libvirt-');
  ({ template } = await makeTemplate(join(root, 'tmpl'), { size: '16M' }));
});

async function imagesDir(): Promise<string> {
  const dir = join(root, `images${counter++}`);
  await mkdir(dir);
  return dir;
}

const request = (dir: string, extra: Record<string, string> = {}) => ({ ip: '10.0.2.15', host: 'web1', gateway: '10.0.2.2', nameserver: '10.0.2.3', template, imagesDir: dir, disk: '32M', ...extra });

/** fakeLibvirt plus storage pools (virt-install adds one for the disk directory) and overrides per sub-command. */
function libvirtWithPools(pools: Record<string, string>, overrides: Record<string, { exitCode: number; stdout?: string; stderr?: string }> = {}) {
  const inner = fakeLibvirt();
  const state = new Map(Object.entries(pools));
  const runner: VirtRunner = async (tool, argv, options) => {
    const args = argv[0] === '--connect' ? argv.slice(2) : [...argv];
    if (tool === 'virsh') {
      const override = overrides[args[0]!];
      if (override) return { stdout: '', stderr: '', ...override };
      if (args[0] === 'pool-list') return { exitCode: 0, stdout: [...state.keys()].join('\n'), stderr: '' };
      if (args[0] === 'pool-dumpxml') return { exitCode: 0, stdout: `<pool type='dir'><target><path>${state.get(args[1]!)}</path></target></pool>`, stderr: '' };
      if (args[0] === 'pool-undefine') state.delete(args[1]!);
    }
    const result = await inner.runner(tool, argv, options);
    if (tool === 'virt-install' && args[0] !== '--version') {
      const disk = args[args.indexOf('--disk') + 1]!.replace(/^path=/, '').split(',')[0]!;
      const dir = disk.slice(0, disk.lastIndexOf('/'));
      if (![...state.values()].includes(dir)) state.set(dir.slice(dir.lastIndexOf('/') + 1), dir);
    }
    return result;
  };
  return { runner, calls: inner.calls, domains: inner.domains, pools: state };
}

describe('createInstance against libvirt behaviour seen on real hosts', () => {
  it('removes the storage pool virt-install autostarted for the images directory, and only that one', async () => {
    const dir = await imagesDir();
    const libvirt = libvirtWithPools({ default: '/var/lib/libvirt/images' });
    const result = await createInstance({ request: request(dir), steps: defaultSteps, runner: libvirt.runner });
    expect(result.outcome).toBe('started');
    expect([...libvirt.pools.keys()]).toEqual(['default']);
    expect(libvirt.calls.some((c) => c.argv.includes('pool-delete'))).toBe(false);
    expect(await listDir(dir)).toEqual(['web1-disk0']);
  });

  it('keeps a pool that already covered the images directory', async () => {
    const dir = await imagesDir();
    const libvirt = libvirtWithPools({ mine: dir });
    await createInstance({ request: request(dir), steps: defaultSteps, runner: libvirt.runner });
    expect([...libvirt.pools.keys()]).toEqual(['mine']);
  });

  it('refuses an undefined libvirt network before writing anything', async () => {
    const dir = await imagesDir();
    const libvirt = libvirtWithPools({}, { 'net-info': { exitCode: 1, stderr: "error: failed to get network 'lab'\nerror: Network not found: no network with matching name 'lab'" } });
    await expect(createInstance({ request: request(dir, { network: 'network=lab' }), steps: defaultSteps, runner: libvirt.runner })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: expect.stringMatching(/step validate failed: libvirt network lab is not defined: .*Network not found/),
    });
    expect(await listDir(dir)).toEqual([]);
    expect(libvirt.calls.some((c) => c.tool === 'virt-install' && c.argv[0] !== '--version')).toBe(false);
  });

  it('refuses an inactive libvirt network with the net-start command', async () => {
    const dir = await imagesDir();
    const libvirt = libvirtWithPools({}, { 'net-info': { exitCode: 0, stdout: 'Name:           default\nActive:         no\n' } });
    await expect(createInstance({ request: request(dir, { network: 'network=default' }), steps: defaultSteps, runner: libvirt.runner })).rejects.toMatchObject({
      hint: 'start it with `virsh net-start default`',
    });
    expect(await listDir(dir)).toEqual([]);
  });

  it('says that --cpuset=auto needs numad when virsh start fails for that reason', async () => {
    const dir = await imagesDir();
    const libvirt = libvirtWithPools({}, { start: { exitCode: 1, stderr: "error: Failed to start domain 'web1'\nerror: operation failed: Failed to query numad for the advisory nodeset\n" } });
    const error = await createInstance({ request: request(dir), steps: defaultSteps, runner: libvirt.runner }).catch((e: unknown) => e);
    expect((error as Error).message).toContain("Failed to start domain 'web1': operation failed: Failed to query numad");
    expect((error as { hint: string }).hint).toMatch(/install numad .*--cpuset none/);
    expect(libvirt.domains.has('web1')).toBe(true);
  });

  it('names the missing bridge when virsh start cannot find it', async () => {
    const dir = await imagesDir();
    const libvirt = libvirtWithPools({}, { start: { exitCode: 1, stderr: "error: Failed to start domain 'web1'\nerror: Cannot get interface MTU on 'br0': No such device\n" } });
    const error = await createInstance({ request: request(dir), steps: defaultSteps, runner: libvirt.runner }).catch((e: unknown) => e);
    expect((error as { hint: string }).hint).toMatch(/no bridge br0: .*--network user or --bridge BR/);
  });
});
