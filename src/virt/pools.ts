import { resolve } from 'node:path';
import { buildVirshPoolDestroyArgs, buildVirshPoolDumpxmlArgs, buildVirshPoolListArgs, buildVirshPoolUndefineArgs, type ConnectOptions } from './argv.js';
import { parseDomainNames } from './domains.js';
import { firstErrorLine, type VirtRunner } from './runner.js';

/**
 * virt-install (virtinst 4.x) defines, starts and autostarts a `dir` storage pool for the directory
 * of a `--disk path=…` that no pool covers yet (named after the directory). diskwright does not
 * want that side effect on the host: it lists the pools before virt-install and afterwards removes
 * new pools whose target is the disk's directory (`pool-destroy` + `pool-undefine`, never
 * `pool-delete`: the directory and its files stay).
 */

/** Names from `virsh pool-list --all --name`; `undefined` when the connection cannot list pools. */
export async function listPools(runner: VirtRunner, options: ConnectOptions = {}, signal?: AbortSignal): Promise<string[] | undefined> {
  const result = await runner('virsh', buildVirshPoolListArgs(options), signal ? { signal } : {});
  return result.exitCode === 0 ? parseDomainNames(result.stdout) : undefined;
}

/** The `<target><path>` of a pool's XML, or `undefined`. */
export function parsePoolTargetPath(xml: string): string | undefined {
  const match = /<target>[\s\S]*?<path>([^<]*)<\/path>/.exec(xml);
  if (!match) return undefined;
  return match[1]!.trim().replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}

export interface PoolCleanup {
  /** Pools this run's virt-install created for the directory and that were removed. */
  readonly removed: readonly string[];
  /** What could not be undone (one line each). */
  readonly problems: readonly string[];
}

/**
 * Removes the pools that appeared since `before` and cover `directory` (the ones virt-install
 * created for the disk). Pools that existed before, or cover other directories, are never touched.
 */
export async function removeNewPoolsFor(
  runner: VirtRunner,
  before: readonly string[],
  directory: string,
  options: ConnectOptions = {},
): Promise<PoolCleanup> {
  const after = await listPools(runner, options);
  const removed: string[] = [];
  const problems: string[] = [];
  if (after === undefined) return { removed, problems: ['pool-list failed: new storage pools not checked'] };
  const known = new Set(before);
  const wanted = resolve(directory);
  for (const pool of after.filter((p) => !known.has(p))) {
    let destroyArgs: string[];
    try {
      destroyArgs = buildVirshPoolDestroyArgs(pool, options);
    } catch {
      continue; // a name our builders refuse is not one virt-install made from a safe directory
    }
    const xml = await runner('virsh', buildVirshPoolDumpxmlArgs(pool, options));
    const target = xml.exitCode === 0 ? parsePoolTargetPath(xml.stdout) : undefined;
    if (target === undefined || resolve(target) !== wanted) continue;
    // An inactive pool cannot be destroyed; that is fine, undefine is what matters.
    await runner('virsh', destroyArgs);
    const undefine = await runner('virsh', buildVirshPoolUndefineArgs(pool, options));
    if (undefine.exitCode === 0) removed.push(pool);
    else problems.push(`pool-undefine ${pool}: ${firstErrorLine(undefine)}`);
  }
  return { removed, problems };
}
