import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import { createInstance, defaultSteps, type PipelineSteps } from '../../src/instance/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { execa } from 'execa';
import { debugfsCat, dumpe2fsHeader, fakeLibvirt, hostFsck, listDir, makeTemplate, sha256, TOOL_ENV } from './instance-helpers.js';

let root: string;
let template: string;
let kernel: string;
let initrd: string;
let templateHash: string;

beforeAll(async () => {
  for (const tool of ['mke2fs', 'e2fsck', 'dumpe2fs', 'debugfs']) await requireTool(tool, 'e2fsprogs');
  root = await tempDir('diskwright-instance-');
  ({ template, kernel, initrd } = await makeTemplate(join(root, 'tmpl'), { size: '32M', bigFileBytes: 12 << 20 }));
  templateHash = await sha256(template);
});

let counter = 0;
async function imagesDir(): Promise<string> {
  const dir = join(root, `images${counter++}`);
  await mkdir(dir);
  return dir;
}

const request = (dir: string, host = 'web1') => ({ ip: '192.168.1.197', host, template, imagesDir: dir, disk: '96M' });

describe('createInstance on a real template (host e2fsprogs as oracle)', () => {
  it('builds a grown, rendered, fsck-clean disk with --disk-only and leaves the template untouched', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt({ reachable: false });
    const result = await createInstance({ request: request(dir), steps: defaultSteps, diskOnly: true, runner: libvirt.runner });
    const disk = join(dir, 'web1-disk0');
    expect(result.outcome).toBe('disk');
    expect(result.disk).toBe(disk);
    expect(await listDir(dir)).toEqual(['web1-disk0']);

    const fsck = await hostFsck(disk);
    expect(fsck.output).toContain('web1');
    expect(fsck.exitCode, fsck.output).toBe(0);
    const header = await dumpe2fsHeader(disk);
    expect(Number(header['Block count']) * Number(header['Block size'])).toBe(96 * 1024 * 1024);
    expect(await debugfsCat(disk, '/etc/hostname')).toBe('web1.linux.bogus');
    expect(await debugfsCat(disk, '/etc/resolv.conf')).toBe('nameserver 192.168.1.101');
    const interfaces = await debugfsCat(disk, '/etc/network/interfaces');
    expect(interfaces).toContain('address 192.168.1.197\n    netmask 255.255.255.0\n    gateway 192.168.1.1');
    expect(interfaces).not.toMatch(/-TMPL/);
    // Files outside the manifest are not touched.
    expect(await debugfsCat(disk, '/etc/motd')).toContain('ADDRESS-TMPL');
    expect(await sha256(template)).toBe(templateHash);

    expect(result.plan.virtInstall).toContain(`path=${disk},bus=virtio,cache=none`);
    expect(result.plan.virtInstall.at(-3)).toBe(
      `kernel=${kernel},initrd=${initrd},kernel_args="root=/dev/vda console=ttyS0 _device=eth0 _ip=192.168.1.197 _hostname=web1.linux.bogus _gateway=192.168.1.1 _dns1=192.168.1.101 _netmask=255.255.255.0"`,
    );
    expect(libvirt.calls.map((c) => c.tool)).not.toContain('virt-install');
  });

  it('keeps file modes of rendered files', async () => {
    const dir = await imagesDir();
    await createInstance({ request: request(dir), steps: defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner });
    const { execa } = await import('execa');
    const { stdout } = await execa('debugfs', ['-R', 'stat /etc/network/interfaces', join(dir, 'web1-disk0')], { env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    expect(stdout).toMatch(/Mode:\s+0640/);
  });

  it('defines and starts the domain through virt-install and virsh on a full create', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt({ existing: { other: ['52:54:00:00:00:01'] } });
    const result = await createInstance({ request: { ...request(dir), connect: 'qemu:///session' }, steps: defaultSteps, runner: libvirt.runner });
    expect(result.outcome).toBe('started');
    expect(libvirt.domains.get('web1')?.state).toBe('running');
    const tools = libvirt.calls.map((c) => `${c.tool} ${c.argv.slice(2, 3).join('')}`);
    // pool-list calls around virt-install look for a storage pool it may have created.
    expect(tools.filter((t) => !t.startsWith('virsh pool-')).slice(-2)).toEqual(['virt-install --name', 'virsh start']);
    expect(libvirt.calls.filter((c) => c.argv[0] !== '--version').every((c) => c.argv[0] === '--connect' && c.argv[1] === 'qemu:///session')).toBe(true);
    expect(result.plan.mac).not.toBe('52:54:00:00:00:01');
    expect((await hostFsck(join(dir, 'web1-disk0'))).exitCode).toBe(0);
  });

  it('--pool uploads the finished disk as a volume and defines the domain on it', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt();
    const result = await createInstance({ request: { ...request(dir), pool: 'default' }, steps: defaultSteps, runner: libvirt.runner });
    expect(result.disk).toBe('default/web1-disk0');
    const argv = libvirt.calls.map((c) => c.argv);
    expect(argv).toContainEqual(['vol-create-as', '--pool', 'default', '--name', 'web1-disk0', '--capacity', String(96 * 1024 * 1024), '--format', 'raw']);
    expect(argv).toContainEqual(['vol-upload', '--pool', 'default', '--vol', 'web1-disk0', '--file', join(dir, 'web1-disk0'), '--sparse']);
    expect(libvirt.calls.find((c) => c.tool === 'virt-install' && c.argv.includes('--name'))!.argv).toContain('vol=default/web1-disk0,bus=virtio,cache=none');
    expect(await listDir(dir)).toEqual([]);
  });

  it('a failed upload deletes the volume it created and the local disk', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt({ fail: 'vol-upload' });
    await expect(createInstance({ request: { ...request(dir), pool: 'default' }, steps: defaultSteps, runner: libvirt.runner })).rejects.toThrow(/step upload failed/);
    expect(libvirt.calls.map((c) => c.argv[0])).toContain('vol-delete');
    expect(libvirt.calls.filter((c) => c.tool === 'virt-install').map((c) => c.argv)).toEqual([['--version']]);
    expect(await listDir(dir)).toEqual([]);
  });

  it('refuses a full create when virt-install is missing, before writing anything', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt();
    const runner: typeof libvirt.runner = async (tool, argv, options) =>
      tool === 'virt-install' ? { exitCode: 127, stdout: '', stderr: 'virt-install: command not found (install the virtinst package)' } : libvirt.runner(tool, argv, options);
    await expect(createInstance({ request: request(dir), steps: defaultSteps, runner })).rejects.toThrow(/step validate failed: virt-install is not available/);
    expect(await listDir(dir)).toEqual([]);
  });

  it('refuses a host whose domain is already defined, before writing anything', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt({ existing: { web1: ['52:54:00:00:00:02'] } });
    await expect(createInstance({ request: request(dir), steps: defaultSteps, runner: libvirt.runner })).rejects.toThrow(/domain named web1 is already defined/);
    expect(await listDir(dir)).toEqual([]);
  });

  it('refuses when the target disk exists', async () => {
    const dir = await imagesDir();
    await createInstance({ request: request(dir), steps: defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner });
    await expect(createInstance({ request: request(dir), steps: defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner })).rejects.toMatchObject({
      code: 'E_EXISTS',
    });
  });

  it('refuses a disk smaller than the template', async () => {
    const dir = await imagesDir();
    await expect(createInstance({ request: { ...request(dir), disk: '16M' }, steps: defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner })).rejects.toThrow(
      /smaller than the template/,
    );
  });

  it('writes nothing with --dry-run', async () => {
    const dir = await imagesDir();
    const result = await createInstance({ request: request(dir), steps: defaultSteps, dryRun: true, runner: fakeLibvirt({ reachable: false }).runner });
    expect(result.outcome).toBe('planned');
    expect(result.plan.steps).toEqual(['validate', 'copy', 'preen', 'resize', 'render', 'customize', 'check', 'rename', 'define', 'start']);
    expect(await listDir(dir)).toEqual([]);
  });
});

describe('failures leave nothing behind', () => {
  it.each(['copy', 'preen', 'resize', 'render', 'check'] as const)('a throwing %s step removes the temp file and names the step', async (step) => {
    const dir = await imagesDir();
    const fail = async (): Promise<never> => {
      throw new Error(`injected ${step} failure`);
    };
    const steps: PipelineSteps = {
      ...defaultSteps,
      copy: step === 'copy' ? fail : defaultSteps.copy,
      grow: step === 'resize' ? fail : defaultSteps.grow,
      render: step === 'render' ? fail : defaultSteps.render,
      check: async (image, options) => {
        // The preen only runs when the template check is not clean: report it as not clean.
        if (step === 'preen' && image === template) return { exitCode: 4, status: 'uncorrectable', output: 'injected' };
        if (step === 'preen' && options.mode === 'preen') return fail();
        if (step === 'check' && image !== template && options.mode === 'check') return fail();
        return defaultSteps.check(image, options);
      },
    };
    await expect(createInstance({ request: request(dir), steps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner })).rejects.toThrow(
      `instance web1: step ${step} failed: injected ${step} failure`,
    );
    expect(await listDir(dir)).toEqual([]);
    expect(await sha256(template)).toBe(templateHash);
  });

  it('a template that is not clean is preened in the copy, never in place', async () => {
    const dir = await imagesDir();
    const dirty = await makeTemplate(join(root, 'dirty'), { size: '32M' });
    await execa('debugfs', ['-w', '-R', 'sif /etc/hostname links_count 5', dirty.template], { env: TOOL_ENV });
    expect((await hostFsck(dirty.template)).exitCode).not.toBe(0);
    const dirtyHash = await sha256(dirty.template);
    const calls: string[] = [];
    const steps: PipelineSteps = {
      ...defaultSteps,
      check: async (image, options) => {
        calls.push(`${image === dirty.template ? 'template' : 'copy'} ${options.mode}`);
        return defaultSteps.check(image, options);
      },
    };
    await createInstance({ request: { ...request(dir), template: dirty.template }, steps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner });
    expect(calls).toEqual(['template check', 'copy preen', 'copy check']);
    expect((await hostFsck(join(dir, 'web1-disk0'))).exitCode).toBe(0);
    expect(await sha256(dirty.template)).toBe(dirtyHash);
  });

  it('an abort during the copy leaves no temp file and an untouched template', async () => {
    const dir = await imagesDir();
    const controller = new AbortController();
    let copyStarted = false;
    const steps: PipelineSteps = {
      ...defaultSteps,
      copy: (src, dst, options) => {
        const copying = defaultSteps.copy(src, dst, options);
        // The copy has started (it is waiting for the block bitmaps): interrupt it now.
        copyStarted = true;
        controller.abort();
        return copying;
      },
    };
    const error = await createInstance({ request: request(dir), steps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner, signal: controller.signal }).catch((e: unknown) => e);
    expect(copyStarted).toBe(true);
    expect(error).toMatchObject({ code: 'E_ABORTED', step: 'copy' });
    expect(await listDir(dir)).toEqual([]);
    expect(await sha256(template)).toBe(templateHash);
  });

  it('a virt-install failure after defining undefines the domain and removes the disk', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt({ fail: 'virt-install', defineThenFail: true });
    await expect(createInstance({ request: request(dir), steps: defaultSteps, runner: libvirt.runner })).rejects.toThrow(/step define failed: virt-install failed: error: post-define failure/);
    expect(libvirt.domains.has('web1')).toBe(false);
    expect(libvirt.calls.some((c) => c.argv.includes('undefine'))).toBe(true);
    expect(await listDir(dir)).toEqual([]);
  });

  it('a virsh start failure keeps domain and disk and prints the retry command', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt({ fail: 'start' });
    const error = await createInstance({ request: request(dir), steps: defaultSteps, runner: libvirt.runner }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_VIRT', hint: 'the domain and disk were kept; retry with: virsh start web1' });
    expect((error as Error).message).toMatch(/domain defined and disk ready at .*web1-disk0, but step start failed/);
    expect(libvirt.domains.has('web1')).toBe(true);
    expect(await listDir(dir)).toEqual(['web1-disk0']);
  });

  it('Ctrl-C during virsh start powers off, undefines and removes the disk', async () => {
    const dir = await imagesDir();
    const libvirt = fakeLibvirt();
    const controller = new AbortController();
    const runner: typeof libvirt.runner = async (tool, argv, options) => {
      const result = await libvirt.runner(tool, argv, options);
      if (argv.includes('start')) {
        controller.abort();
        throw new AbortedError('virsh start aborted');
      }
      return result;
    };
    await expect(createInstance({ request: request(dir), steps: defaultSteps, runner, signal: controller.signal })).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(libvirt.domains.has('web1')).toBe(false);
    expect(libvirt.calls.map((c) => c.argv[0])).toContain('destroy');
    expect(await listDir(dir)).toEqual([]);
  });

  it('a template without a manifest is refused before any work', async () => {
    const dir = await imagesDir();
    await expect(createInstance({ request: { ...request(dir), template: kernel }, steps: defaultSteps, diskOnly: true, runner: fakeLibvirt({ reachable: false }).runner })).rejects.toMatchObject({
      code: 'E_TEMPLATE',
    });
    expect(await listDir(dir)).toEqual([]);
  });
});
