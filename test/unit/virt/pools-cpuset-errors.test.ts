import { describe, expect, it } from 'vitest';
import { validateInstanceRequest } from '../../../src/instance/index.js';
import {
  assertCpuset,
  buildVirtInstallArgs,
  firstErrorLine,
  parsePoolTargetPath,
  removeNewPoolsFor,
  type VirtInstallSpec,
  type VirtRunner,
} from '../../../src/virt/index.js';

const base: VirtInstallSpec = {
  name: 'web1',
  ramMiB: 512,
  vcpus: 1,
  disk: { path: '/srv/images/web1-disk0' },
  network: { kind: 'user' },
  mac: '52:54:00:12:34:56',
  kernel: '/srv/k/vmlinuz',
  kernelArgs: ['root=/dev/vda'],
};

describe('--cpuset', () => {
  it('keeps the article\'s --cpuset=auto by default, omits it for none and passes a CPU range', () => {
    expect(buildVirtInstallArgs(base)).toContain('--cpuset=auto');
    expect(buildVirtInstallArgs({ ...base, cpuset: 'none' }).some((a) => a.startsWith('--cpuset'))).toBe(false);
    expect(buildVirtInstallArgs({ ...base, cpuset: '0-1' })).toContain('--cpuset=0-1');
  });

  it.each(['0,1', 'auto,x', '-1', '3-1', 'all', ''])('rejects %j', (value) => {
    expect(() => assertCpuset(value)).toThrow(/auto, none, N or N-M/);
  });

  it('is a request key validated with the rest', () => {
    const request = { ip: '10.0.2.15', host: 'web1', gateway: '10.0.2.2', nameserver: '10.0.2.3', template: '/t', imagesDir: '/i' };
    expect(validateInstanceRequest(request).cpuset).toBe('auto');
    expect(validateInstanceRequest({ ...request, cpuset: 'none' }).cpuset).toBe('none');
    expect(() => validateInstanceRequest({ ...request, cpuset: 'auto,placement=static' })).toThrow(/cpuset/);
  });

  it('never lets virt-install open a console or viewer', () => {
    expect(buildVirtInstallArgs(base)).toContain('--noautoconsole');
  });
});

describe('firstErrorLine', () => {
  it('keeps the reason virsh prints on the line after the summary', () => {
    const stderr = "error: Failed to start domain 'web1'\nerror: operation failed: Failed to query numad for the advisory nodeset\n";
    expect(firstErrorLine({ exitCode: 1, stdout: '', stderr })).toBe(
      "error: Failed to start domain 'web1': operation failed: Failed to query numad for the advisory nodeset",
    );
  });

  it('falls back to the first line, or the exit code', () => {
    expect(firstErrorLine({ exitCode: 2, stdout: 'something odd\nmore', stderr: '' })).toBe('something odd');
    expect(firstErrorLine({ exitCode: 3, stdout: '', stderr: '' })).toBe('exit code 3');
  });
});

describe('removeNewPoolsFor', () => {
  const xml = (path: string) => `<pool type='dir'>\n  <name>x</name>\n  <target>\n    <path>${path}</path>\n  </target>\n</pool>\n`;

  function fakePools(pools: Record<string, string>): { runner: VirtRunner; calls: string[][]; pools: Map<string, string> } {
    const state = new Map(Object.entries(pools));
    const calls: string[][] = [];
    const runner: VirtRunner = async (_tool, argv) => {
      calls.push([...argv]);
      const [command, name] = argv;
      if (command === 'pool-list') return { exitCode: 0, stdout: [...state.keys()].join('\n'), stderr: '' };
      if (command === 'pool-dumpxml') return state.has(name!) ? { exitCode: 0, stdout: xml(state.get(name!)!), stderr: '' } : { exitCode: 1, stdout: '', stderr: 'error: no pool' };
      if (command === 'pool-undefine') {
        state.delete(name!);
        return { exitCode: 0, stdout: '', stderr: '' };
      }
      return { exitCode: 0, stdout: '', stderr: '' };
    };
    return { runner, calls, pools: state };
  }

  it('parses the target path of a pool', () => {
    expect(parsePoolTargetPath(xml('/srv/images'))).toBe('/srv/images');
    expect(parsePoolTargetPath('<pool/>')).toBeUndefined();
  });

  it('removes only a new pool that covers the disk directory, without deleting files', async () => {
    const fake = fakePools({ default: '/var/lib/libvirt/images', images: '/srv/images', other: '/srv/other' });
    const result = await removeNewPoolsFor(fake.runner, ['default'], '/srv/images');
    expect(result).toEqual({ removed: ['images'], problems: [] });
    expect([...fake.pools.keys()]).toEqual(['default', 'other']);
    expect(fake.calls.map((c) => c[0])).not.toContain('pool-delete');
    expect(fake.calls).toContainEqual(['pool-destroy', 'images']);
  });

  it('leaves a pool that existed before virt-install alone', async () => {
    const fake = fakePools({ images: '/srv/images' });
    expect(await removeNewPoolsFor(fake.runner, ['images'], '/srv/images')).toEqual({ removed: [], problems: [] });
    expect(fake.pools.has('images')).toBe(true);
  });
});
