import { RECORD_SUFFIX } from '../disk/commit.js';
import { rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { DiskwrightError } from '../errors.js';
import {
  buildVirshDestroyArgs,
  buildVirshDomblklistArgs,
  buildVirshDomstateArgs,
  buildVirshUndefineArgs,
  buildVirshVolDeletePathArgs,
  execaRunner,
  listDomains,
  parseDomblklist,
  runVirtChecked,
  type DomainInfo,
  type VirtRunner,
} from '../virt/index.js';
import { validateHostname } from './names.js';
import { isLocalConnection } from './plan.js';
import { instanceDiskName } from './spec.js';
import { releaseThinInstance } from './thin.js';

export interface ManageOptions {
  readonly connect?: string;
  readonly runner?: VirtRunner;
  readonly signal?: AbortSignal;
}

/** Domains on the connection with their state, disks and MACs (`diskwright instance list`). */
export async function listInstances(options: ManageOptions = {}): Promise<DomainInfo[]> {
  return listDomains(options.runner ?? execaRunner, options.connect ? { connect: options.connect } : {}, options.signal);
}

export interface DestroyResult {
  readonly host: string;
  /** The domain was running and was powered off. */
  readonly stopped: boolean;
  readonly removedDisks: readonly string[];
  readonly keptDisks: readonly string[];
}

/**
 * Powers off (if running) and undefines HOST; removes its `HOST-disk0` (or thin/standalone
 * `HOST-disk0.qcow2`) disk unless `keepDisk` — never a thin disk's template
 * (through libvirt's `vol-delete` when the disk is in a pool, else the local file when the
 * connection is local). Disks it did not create (other names, CD-ROMs) are always kept.
 */
export async function destroyInstance(host: string, options: ManageOptions & { readonly keepDisk?: boolean } = {}): Promise<DestroyResult> {
  validateHostname(host, 'host');
  const runner = options.runner ?? execaRunner;
  const connect = options.connect ? { connect: options.connect } : {};
  const { signal } = options;
  const state = await runner('virsh', buildVirshDomstateArgs(host, connect), signal ? { signal } : {});
  if (state.exitCode !== 0) {
    throw new DiskwrightError('E_NOT_FOUND', `no libvirt domain named ${host}${options.connect ? ` at ${options.connect}` : ''}`, {
      hint: 'run `diskwright instance list` to see the domains',
    });
  }
  const disks = parseDomblklist((await runVirtChecked(runner, 'virsh', buildVirshDomblklistArgs(host, connect), 'virsh domblklist', signal)).stdout);
  const running = !/shut off/i.test(state.stdout);
  if (running) await runVirtChecked(runner, 'virsh', buildVirshDestroyArgs(host, connect), `virsh destroy ${host}`, signal);
  await runVirtChecked(runner, 'virsh', buildVirshUndefineArgs(host, connect), `virsh undefine ${host}`, signal);

  const removed: string[] = [];
  const kept: string[] = [];
  for (const disk of disks) {
    const name = basename(disk.source);
    const ours = disk.device === 'disk' && disk.source.startsWith('/') && (name === instanceDiskName(host, 'raw') || name === instanceDiskName(host, 'thin'));
    if (!ours || options.keepDisk) {
      if (disk.source !== '-' && disk.source !== '') kept.push(disk.source);
      continue;
    }
    // A removed thin overlay leaves its template's list of dependents; the template itself (the
    // overlay's backing file) is never removed.
    const release = isLocalConnection(options.connect) ? releaseThinInstance(disk.source) : () => Promise.resolve();
    const viaLibvirt = await runner('virsh', buildVirshVolDeletePathArgs(disk.source, connect)).catch(() => ({ exitCode: 1, stdout: '', stderr: '' }));
    // A commit record of the removed disk must not outlive it: the next disk of that name would
    // get it "rolled back" onto it (src/disk/commit.ts).
    const dropRecord = (): Promise<void> => (isLocalConnection(options.connect) ? rm(`${disk.source}${RECORD_SUFFIX}`, { force: true }) : Promise.resolve());
    if (viaLibvirt.exitCode === 0) {
      removed.push(disk.source);
      await dropRecord();
      await release();
    } else if (isLocalConnection(options.connect) && (await stat(disk.source).then(() => true, () => false))) {
      await rm(disk.source, { force: true });
      await dropRecord();
      removed.push(disk.source);
      await release();
    } else {
      kept.push(disk.source);
    }
  }
  return { host, stopped: running, removedDisks: removed, keptDisks: kept };
}

/** The shared grown layers of thin instances in an images directory (`instance list --bases`). */
export { listSharedBases, pruneStaleBases, type SharedBaseInfo } from './grown-base.js';
