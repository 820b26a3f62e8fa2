import type { Progress, ProgressCallback } from '../io/progress.js';
import { DiskwrightError, isDiskwrightError } from '../errors.js';
import type { VirtRunner } from '../virt/index.js';
import { mergeRequests } from './config.js';
import type { Fleet } from './fleet.js';
import { createInstance, type InstanceResult, type StepEvent } from './pipeline.js';
import type { InstanceRequest } from './request.js';
import type { PipelineSteps } from './steps.js';

/** Default number of instances built at once (disk work is I/O- and CPU-bound on small hosts). */
export const DEFAULT_FLEET_CONCURRENCY = 2;
export const MAX_FLEET_CONCURRENCY = 16;

export type FleetEntryResult =
  | { readonly host: string; readonly ok: true; readonly result: InstanceResult }
  | { readonly host: string; readonly ok: false; readonly error: DiskwrightError };

export interface CreateFleetOptions {
  /** Config/flag layer under each entry (entry values win over fleet defaults, which win over this). */
  readonly base?: InstanceRequest;
  /** Flags that override everything (e.g. --connect given on the command line). */
  readonly overrides?: InstanceRequest;
  readonly concurrency?: number;
  readonly dryRun?: boolean;
  readonly diskOnly?: boolean;
  readonly runner?: VirtRunner;
  readonly steps: PipelineSteps;
  readonly cwd?: string;
  readonly signal?: AbortSignal;
  /** One aggregated progress over all copies. */
  readonly onProgress?: ProgressCallback;
  readonly onStep?: (event: StepEvent) => void;
  /** Called as each instance finishes. */
  readonly onResult?: (result: FleetEntryResult) => void;
}

function asError(error: unknown): DiskwrightError {
  if (isDiskwrightError(error)) return error;
  return new DiskwrightError('E_IO', error instanceof Error ? error.message : String(error), { cause: error });
}

/**
 * Creates every instance of a fleet with bounded concurrency. One instance failing (bad entry,
 * failed step) does not stop or disturb the others; the result lists each outcome in fleet order.
 * Duplicate host names or addresses inside the fleet fail the later entries before any work.
 */
export async function createFleet(fleet: Fleet, options: CreateFleetOptions): Promise<FleetEntryResult[]> {
  const concurrency = Math.min(MAX_FLEET_CONCURRENCY, Math.max(1, options.concurrency ?? DEFAULT_FLEET_CONCURRENCY));
  const requests = fleet.instances.map((entry) => mergeRequests(options.base ?? {}, fleet.defaults, entry, options.overrides ?? {}));
  const results: (FleetEntryResult | undefined)[] = new Array(requests.length).fill(undefined);
  const seenHosts = new Map<string, number>();
  const seenIps = new Map<string, number>();
  requests.forEach((request, i) => {
    const host = String(request.host ?? `#${i}`);
    const dupHost = seenHosts.get(host);
    const dupIp = request.ip === undefined ? undefined : seenIps.get(request.ip);
    if (dupHost !== undefined || dupIp !== undefined) {
      const what = dupHost !== undefined ? `host name ${host}` : `address ${request.ip}`;
      results[i] = { host, ok: false, error: new DiskwrightError('E_INVALID_ARGUMENT', `instance ${host}: ${what} is already used by entry ${(dupHost ?? dupIp)! + 1} of the fleet`) };
      return;
    }
    seenHosts.set(host, i);
    if (request.ip !== undefined) seenIps.set(request.ip, i);
  });

  const reservedMacs = new Set<string>();
  const progress = new Map<number, Progress>();
  const report = (): void => {
    if (!options.onProgress) return;
    let bytes = 0;
    let total = 0;
    for (const p of progress.values()) {
      bytes += p.bytes;
      total += p.total ?? p.bytes;
    }
    options.onProgress({ bytes, total });
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= requests.length) return;
      if (results[i] !== undefined) {
        options.onResult?.(results[i]!);
        continue;
      }
      const request = requests[i]!;
      const host = String(request.host ?? `#${i}`);
      let entry: FleetEntryResult;
      try {
        const result = await createInstance({
          request,
          steps: options.steps,
          reservedMacs,
          ...(options.cwd ? { cwd: options.cwd } : {}),
          ...(options.dryRun ? { dryRun: true } : {}),
          ...(options.diskOnly ? { diskOnly: true } : {}),
          ...(options.runner ? { runner: options.runner } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.onStep ? { onStep: options.onStep } : {}),
          onProgress: (p) => {
            progress.set(i, p);
            report();
          },
        });
        entry = { host, ok: true, result };
      } catch (error) {
        const wrapped = asError(error);
        entry = { host, ok: false, error: wrapped.message.includes(host) ? wrapped : new DiskwrightError(wrapped.code, `instance ${host}: ${wrapped.message}`, { cause: wrapped, hint: wrapped.hint }) };
      }
      results[i] = entry;
      options.onResult?.(entry);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  return results as FleetEntryResult[];
}
