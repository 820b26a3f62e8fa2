import { describe, expect, it } from 'vitest';
import { destroyInstance } from '../../../src/instance/index.js';
import { listDomains, parseDomblklist, parseDomainNames, parseDomiflistMacs, type VirtRunner } from '../../../src/virt/index.js';

const DOMIFLIST = ` Interface   Type     Source   Model    MAC
-----------------------------------------------------------
 vnet0       bridge   br0      virtio   52:54:00:AB:cd:01
`;
const DOMBLKLIST = ` Type   Device   Target   Source
------------------------------------------------------------------------
 file   disk     vda      /var/lib/libvirt/images/web1-disk0
 file   cdrom    sda      -
`;

/** A fake virsh keyed by the sub-command, recording every argv. */
function fakeVirsh(answers: Record<string, { exitCode?: number; stdout?: string; stderr?: string }>): { runner: VirtRunner; calls: string[][] } {
  const calls: string[][] = [];
  const runner: VirtRunner = async (_tool, argv) => {
    calls.push([...argv]);
    const command = argv.find((a) => !a.startsWith('-') && !a.includes('://'))!;
    const answer = answers[command] ?? { exitCode: 1, stderr: `error: unexpected ${command}` };
    return { exitCode: answer.exitCode ?? 0, stdout: answer.stdout ?? '', stderr: answer.stderr ?? '' };
  };
  return { runner, calls };
}

describe('virsh output parsers', () => {
  it('read domain names, MACs and disks', () => {
    expect(parseDomainNames('web1\nweb2\n\n')).toEqual(['web1', 'web2']);
    expect(parseDomiflistMacs(DOMIFLIST)).toEqual(['52:54:00:ab:cd:01']);
    expect(parseDomblklist(DOMBLKLIST)).toEqual([
      { type: 'file', device: 'disk', target: 'vda', source: '/var/lib/libvirt/images/web1-disk0' },
      { type: 'file', device: 'cdrom', target: 'sda', source: '-' },
    ]);
  });
});

describe('listDomains', () => {
  it('lists each domain with state, disks and MACs through the runner', async () => {
    const { runner, calls } = fakeVirsh({
      list: { stdout: 'web1\n' },
      domstate: { stdout: 'running\n\n' },
      domblklist: { stdout: DOMBLKLIST },
      domiflist: { stdout: DOMIFLIST },
    });
    const domains = await listDomains(runner, { connect: 'qemu:///session' });
    expect(domains).toEqual([
      { name: 'web1', state: 'running', disks: parseDomblklist(DOMBLKLIST), macs: ['52:54:00:ab:cd:01'] },
    ]);
    expect(calls[0]).toEqual(['--connect', 'qemu:///session', 'list', '--all', '--name']);
  });
});

describe('destroyInstance', () => {
  it('powers off, undefines and deletes only the HOST-disk0 volume', async () => {
    const { runner, calls } = fakeVirsh({
      domstate: { stdout: 'running\n' },
      domblklist: { stdout: DOMBLKLIST },
      destroy: {},
      undefine: {},
      'vol-delete': {},
    });
    const result = await destroyInstance('web1', { runner });
    expect(result).toEqual({ host: 'web1', stopped: true, removedDisks: ['/var/lib/libvirt/images/web1-disk0'], keptDisks: [] });
    expect(calls.map((c) => c[0])).toEqual(['domstate', 'domblklist', 'destroy', 'undefine', 'vol-delete']);
  });

  it('keeps the disk with keepDisk and does not power off a shut-off domain', async () => {
    const { runner, calls } = fakeVirsh({ domstate: { stdout: 'shut off\n' }, domblklist: { stdout: DOMBLKLIST }, undefine: {} });
    const result = await destroyInstance('web1', { runner, keepDisk: true });
    expect(result.stopped).toBe(false);
    expect(result.keptDisks).toEqual(['/var/lib/libvirt/images/web1-disk0']);
    expect(calls.map((c) => c[0])).toEqual(['domstate', 'domblklist', 'undefine']);
  });

  it('says so when the domain does not exist', async () => {
    const { runner } = fakeVirsh({ domstate: { exitCode: 1, stderr: 'error: failed to get domain' } });
    await expect(destroyInstance('nope', { runner })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});
