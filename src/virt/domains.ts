import { buildVirshDomblklistArgs, buildVirshDomiflistArgs, buildVirshDomstateArgs, buildVirshListArgs, type ConnectOptions } from './argv.js';
import { runVirtChecked, type VirtRunner } from './runner.js';

/** Largest number of domains we inspect on one connection (bounds the per-domain queries). */
export const MAX_DOMAINS = 4096;

/** One disk of a domain as `virsh domblklist --details` prints it. */
export interface DomainDisk {
  readonly type: string;
  readonly device: string;
  readonly target: string;
  readonly source: string;
}

export interface DomainInfo {
  readonly name: string;
  readonly state: string;
  readonly disks: readonly DomainDisk[];
  readonly macs: readonly string[];
}

/** Names from `virsh list --all --name` (one per line). */
export function parseDomainNames(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(0, MAX_DOMAINS);
}

const MAC_IN_TEXT = /\b[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\b/g;

/** MAC addresses in `virsh domiflist` output (lower-case). */
export function parseDomiflistMacs(stdout: string): string[] {
  return [...stdout.matchAll(MAC_IN_TEXT)].map((m) => m[0].toLowerCase());
}

/** Rows of `virsh domblklist NAME --details` (header and rule lines skipped). */
export function parseDomblklist(stdout: string): DomainDisk[] {
  const disks: DomainDisk[] = [];
  for (const line of stdout.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[0] === 'Type' || /^-+$/.test(fields[0]!)) continue;
    const [type, device, target, ...source] = fields;
    disks.push({ type: type!, device: device!, target: target!, source: source.join(' ') });
  }
  return disks;
}

/** True when libvirt answers on the connection (`virsh list` succeeds). */
export async function isLibvirtReachable(runner: VirtRunner, options: ConnectOptions = {}, signal?: AbortSignal): Promise<boolean> {
  const result = await runner('virsh', buildVirshListArgs(options), signal ? { signal } : {});
  return result.exitCode === 0;
}

/** Whether a domain of that name is defined (`virsh domstate` exit code). */
export async function domainExists(runner: VirtRunner, name: string, options: ConnectOptions = {}, signal?: AbortSignal): Promise<boolean> {
  const result = await runner('virsh', buildVirshDomstateArgs(name, options), signal ? { signal } : {});
  return result.exitCode === 0;
}

/** Every domain on the connection with its state, disks and MACs. */
export async function listDomains(runner: VirtRunner, options: ConnectOptions = {}, signal?: AbortSignal): Promise<DomainInfo[]> {
  const names = parseDomainNames((await runVirtChecked(runner, 'virsh', buildVirshListArgs(options), 'virsh list', signal)).stdout);
  const domains: DomainInfo[] = [];
  for (const name of names) {
    // Names come from libvirt; anything our builders refuse is listed without details.
    let state = 'unknown';
    let disks: DomainDisk[] = [];
    let macs: string[] = [];
    try {
      state = (await runner('virsh', buildVirshDomstateArgs(name, options), signal ? { signal } : {})).stdout.trim().split('\n')[0] ?? 'unknown';
      disks = parseDomblklist((await runner('virsh', buildVirshDomblklistArgs(name, options), signal ? { signal } : {})).stdout);
      macs = parseDomiflistMacs((await runner('virsh', buildVirshDomiflistArgs(name, options), signal ? { signal } : {})).stdout);
    } catch (error) {
      if ((error as { code?: string }).code === 'E_ABORTED') throw error;
    }
    domains.push({ name, state, disks, macs });
  }
  return domains;
}

/** MACs used by every domain on the connection (for picking a fresh one): one domiflist per domain. */
export async function usedMacs(runner: VirtRunner, options: ConnectOptions = {}, signal?: AbortSignal): Promise<Set<string>> {
  const names = parseDomainNames((await runVirtChecked(runner, 'virsh', buildVirshListArgs(options), 'virsh list', signal)).stdout);
  const macs = new Set<string>();
  for (const name of names) {
    let argv: string[];
    try {
      argv = buildVirshDomiflistArgs(name, options);
    } catch {
      continue; // a name our builders refuse (diskwright never creates such names)
    }
    const result = await runner('virsh', argv, signal ? { signal } : {});
    for (const mac of parseDomiflistMacs(result.stdout)) macs.add(mac);
  }
  return macs;
}
