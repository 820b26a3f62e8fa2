import { open, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { removeLeftoverTemps, withImage } from '../disk/with-image.js';
import { recordFormat } from '../disk/format-record.js';
import { resolveFormat } from '../disk/open.js';
import { dirname } from 'node:path';
import { tempPathBeside, withAtomicPath } from '../io/atomic.js';
import { protectTemplate, recordTemplateClean, registerThinInstance, releaseThinInstance, templateIdentity, templateKnownClean } from './thin.js';
import { hasReadSet, prefetchTemplate, saveReadSet } from './prefetch.js';
import { holdSharedBase, publishAndHoldSharedBase, pruneSharedBase, sharedBasePath, usableSharedBase } from './grown-base.js';
import type { ImageLock } from '../disk/lock.js';
import type { ProgressCallback } from '../io/progress.js';
import { AbortedError, DiskwrightError, isDiskwrightError, throwIfAborted } from '../errors.js';
import {
  buildVirshDestroyArgs,
  destroyCommand,
  buildVirshUndefineArgs,
  buildVirshVolDeleteArgs,
  domainExists,
  execaRunner,
  firstErrorLine,
  formatCommandLine,
  listPools,
  removeNewPoolsFor,
  runVirtChecked,
  type VirtRunner,
} from '../virt/index.js';
import { planInstance, type InstancePlan, type StepName } from './plan.js';
import { validateInstanceRequest, type InstanceSpec } from './spec.js';
import type { InstanceRequest } from './request.js';
import type { PipelineSteps } from './steps.js';

/** A failure of one pipeline step; `step` names it and the message says so. */
export class InstanceStepError extends DiskwrightError {
  override readonly name = 'InstanceStepError';
  readonly step: StepName;
  readonly host: string;
  constructor(step: StepName, host: string, error: unknown) {
    const inner = error instanceof DiskwrightError ? error : undefined;
    const message = error instanceof Error ? error.message : String(error);
    super(inner?.code ?? (step === 'define' || step === 'start' || step === 'upload' ? 'E_VIRT' : 'E_IO'), `instance ${host}: step ${step} failed: ${message}`, {
      cause: error,
      hint: inner?.hint,
      path: inner?.path,
    });
    this.step = step;
    this.host = host;
  }
}

/**
 * The error a failed step reports. Once the run is aborted, whatever fails because of it (a read
 * on a closed descriptor, a temp file removed under the copy) is reported as the abort it is.
 */
function stepFailure(step: StepName, host: string, error: unknown, signal: AbortSignal | undefined): InstanceStepError {
  if (error instanceof InstanceStepError) return error;
  const aborted = signal?.aborted === true && !isDiskwrightError(error, 'E_ABORTED');
  return new InstanceStepError(step, host, aborted ? new AbortedError('operation aborted', { cause: error }) : error);
}

/** Per-step progress/trace events for displays. */
export interface StepEvent {
  readonly host: string;
  readonly step: StepName;
  readonly phase: 'start' | 'done';
  readonly seconds?: number;
  /** Something worth telling that did not fail the step (e.g. a pool that could not be removed). */
  readonly note?: string;
}

export interface CreateInstanceOptions {
  /** Merged request (flags over config over defaults) or an already validated spec. */
  readonly request?: InstanceRequest;
  readonly spec?: InstanceSpec;
  readonly cwd?: string;
  /** Validate and plan only; write nothing, run nothing that changes state. */
  readonly dryRun?: boolean;
  /** Build the disk but do not call virt-install/virsh start. */
  readonly diskOnly?: boolean;
  readonly runner?: VirtRunner;
  /** Filesystem operations (defaults: the library's own); tests override single steps. */
  readonly steps: PipelineSteps;
  readonly reservedMacs?: Set<string>;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressCallback;
  readonly onStep?: (event: StepEvent) => void;
}

export interface InstanceResult {
  readonly host: string;
  readonly plan: InstancePlan;
  /** What happened: `planned` (dry run), `disk` (disk only), `started`. */
  readonly outcome: 'planned' | 'disk' | 'started';
  /** Final disk path (a host file) or `pool/volume`. */
  readonly disk: string;
  readonly steps: readonly { readonly step: StepName; readonly seconds: number }[];
}

/**
 * Creates one instance: validate → copy the template sparsely into a temp file beside the target,
 * grown to the new size (e2fsck -fn of the template alongside) → e2fsck -fp unless the template
 * was clean → resize2fs → fill the placeholders → e2fsck -fn must be
 * clean → rename to `IMAGES_DIR/HOST-disk0` → (`--pool`: upload) → virt-install → virsh start.
 * Any failure or abort removes the temp file, the disk and a domain this run defined; the
 * template is only ever read. If only `virsh start` fails, the domain and disk are kept and the
 * error says how to retry.
 */
export async function createInstance(options: CreateInstanceOptions): Promise<InstanceResult> {
  const runner = options.runner ?? execaRunner;
  const { signal, steps } = options;
  const timings: { step: StepName; seconds: number }[] = [];
  const spec = options.spec ?? validateInstanceRequest(options.request ?? {}, options.cwd ? { cwd: options.cwd } : {});
  const host = spec.host;

  const run = async <T>(step: StepName, fn: () => Promise<T>): Promise<T> => {
    try {
      throwIfAborted(signal);
      options.onStep?.({ host, step, phase: 'start' });
      const started = performance.now();
      const result = await fn();
      const seconds = (performance.now() - started) / 1000;
      timings.push({ step, seconds });
      options.onStep?.({ host, step, phase: 'done', seconds });
      return result;
    } catch (error) {
      throw stepFailure(step, host, error, signal);
    }
  };

  // The template is read under a shared image lock (a writer to it waits or fails; a template
  // with an interrupted commit is refused). A missing template is planInstance's error to give.
  const readingTemplate = <T>(fn: () => Promise<T>): Promise<T> =>
    existsSync(spec.template) ? withImage(spec.template, { access: 'read', ...(signal ? { signal } : {}) }, fn) : fn();
  const built = await readingTemplate(async () => {
    const plan = await run('validate', () =>
      planInstance(spec, {
        runner,
        steps,
        requireLibvirt: !options.dryRun && !options.diskOnly,
        ...(options.reservedMacs ? { reservedMacs: options.reservedMacs } : {}),
        ...(signal ? { signal } : {}),
      }),
    );
    if (options.dryRun) return { plan, planned: true };
    await buildDisk(spec, plan, run, timings, steps, signal, options.onProgress, (step, note) => options.onStep?.({ host, step, phase: 'done', note }));
    return { plan, planned: false };
  });
  const { plan } = built;
  const diskLabel = 'path' in plan.disk ? plan.disk.path : `${plan.disk.pool}/${plan.disk.volume}`;
  if (built.planned) return { host, plan, outcome: 'planned', disk: diskLabel, steps: timings };

  const connect = spec.connect === undefined ? {} : { connect: spec.connect };
  if (options.diskOnly) return { host, plan, outcome: 'disk', disk: spec.diskPath, steps: timings };

  // From here the disk exists under its final name: remove it (and anything defined) on failure.
  let volumeCreated = false;
  try {
    if (plan.volCreate && plan.volUpload && spec.pool !== undefined) {
      await run('upload', async () => {
        await runVirtChecked(runner, 'virsh', plan.volCreate!, 'virsh vol-create-as', signal);
        volumeCreated = true;
        await runVirtChecked(runner, 'virsh', plan.volUpload!, 'virsh vol-upload', signal);
        await rm(spec.diskPath, { force: true });
      });
    }
    await run('define', () =>
      // One define at a time per process: a fleet's virt-installs would otherwise race for the
      // storage pool virt-install creates for the shared images directory.
      serializeDefine(async () => {
        const poolsBefore = 'path' in plan.disk ? await listPools(runner, connect, signal) : undefined;
        try {
          await runVirtChecked(runner, 'virt-install', plan.virtInstall, 'virt-install', signal);
        } finally {
          // virt-install autostarts a new dir pool for the disk's directory; undo that side effect.
          if (poolsBefore !== undefined) {
            const cleanup = await removeNewPoolsFor(runner, poolsBefore, dirname(spec.diskPath), connect);
            if (cleanup.problems.length > 0) options.onStep?.({ host, step: 'define', phase: 'done', note: cleanup.problems.join('; ') });
          }
        }
      }),
    );
  } catch (error) {
    await rollback(runner, spec, connect, volumeCreated, error);
    throw error;
  }

  try {
    await run('start', () => runVirtChecked(runner, 'virsh', plan.virshStart, 'virsh start', signal));
  } catch (error) {
    if (isDiskwrightError(error, 'E_ABORTED')) {
      // Ctrl-C while starting: leave nothing behind, as for any other interrupted step.
      await runner('virsh', buildVirshDestroyArgs(spec.host, connect)).catch(() => undefined);
      await rollback(runner, spec, connect, spec.pool !== undefined, error);
      throw error;
    }
    const detail = error instanceof InstanceStepError && error.cause instanceof Error ? error.cause.message : String(error);
    const retry = formatCommandLine('virsh', plan.virshStart);
    const numad = /numad/i.test(detail) && spec.cpuset === 'auto';
    const destroy = destroyCommand(host, connect);
    const kvm = /\bkvm\b|failed to set MSR/i.test(detail) && spec.virtType !== 'qemu';
    const noBridge = spec.network.kind === 'bridge' && /interface MTU|No such device/i.test(detail);
    throw new DiskwrightError('E_VIRT', `instance ${host}: domain defined and disk ready at ${diskLabel}, but step start failed: ${detail}`, {
      cause: error,
      hint: kvm
        ? `KVM does not work on this host: \`${destroy}\` and create again with --virt-type qemu --cpu max`
        : numad
        ? `--cpuset=auto needs numad on the host: install numad and retry with \`${retry}\`, or \`${destroy}\` and create again with --cpuset none`
        : noBridge
          ? `the host has no bridge ${spec.network.name}: create it and retry with \`${retry}\`, or \`${destroy}\` and create again with --network user or --bridge BR`
          : `the domain and disk were kept; retry with: ${retry}`,
    });
  }
  return { host, plan, outcome: 'started', disk: diskLabel, steps: timings };
}

let defineQueue: Promise<unknown> = Promise.resolve();

/** Runs `fn` after every earlier define of this process has finished (success or failure). */
function serializeDefine<T>(fn: () => Promise<T>): Promise<T> {
  const result = defineQueue.then(fn, fn);
  defineQueue = result.catch(() => undefined);
  return result;
}

type RunStep = <T>(step: StepName, fn: () => Promise<T>) => Promise<T>;

/** The shared grown base an instance is built over, and the shared lock held on it meanwhile. */
interface BaseHolder {
  base?: { readonly path: string; readonly lock: ImageLock | undefined };
}

/**
 * copy (raw) or overlay (qcow2) → preen → resize → render → customize → check in a temp file
 * beside the target, (standalone: flatten into a full qcow2) then rename.
 */
async function buildDisk(
  spec: InstanceSpec,
  plan: InstancePlan,
  run: RunStep,
  timings: { step: StepName; seconds: number }[],
  steps: PipelineSteps,
  signal: AbortSignal | undefined,
  onProgress: ProgressCallback | undefined,
  onNote: (step: StepName, note: string) => void,
): Promise<void> {
  const stepSignal = signal ? { signal } : {};
  let renamed = false;
  let renameStarted = 0;
  let unlist = (): void => undefined;
  // The shared grown base this instance is built over (held under a shared lock until it is listed).
  const holder: BaseHolder = {};
  // Temp disks of killed runs for this host (nobody has them open) would pile up: remove them.
  removeLeftoverTemps(spec.diskPath);
  // Read-only before any overlay records the template's identity, whose ctime a later chmod
  // (when the first overlay is listed) would change; undone when nothing ends up depending on it.
  const release = spec.diskKind === 'raw' ? () => undefined : protectTemplate(spec.template);
  try {
    await withAtomicPath(spec.diskPath, async (target) => {
      // A standalone qcow2 is built as a thin overlay first, then flattened into the target.
      const temp = spec.diskKind === 'standalone' ? tempPathBeside(spec.diskPath) : target;
      try {
        await buildInto(spec, plan, temp, run, steps, signal, onProgress, holder);
        if (spec.diskKind === 'standalone') {
          await run('flatten', () => steps.flatten(temp, target, { ...stepSignal, ...(onProgress ? { onProgress } : {}) }));
        }
      } finally {
        if (temp !== target) await rm(temp, { force: true });
      }
      throwIfAborted(signal);
      // diskwright made this disk raw: its guest's sector 0 must never make it a qcow2 (docs/qcow2.md).
      // A qcow2 is recorded as one: its backing chain is diskwright's own and trusted.
      recordFormat(target, spec.diskKind === 'raw' ? 'raw' : 'qcow2');
      if (spec.diskKind === 'thin') {
        // Listed before the rename: there is no moment when the overlay exists unlisted.
        const listed = registerThinInstance(holder.base?.path ?? spec.template, spec.diskPath, target);
        if (listed.problem !== undefined) onNote('overlay', listed.problem);
        unlist = listed.undo;
      }
      // Past this point only fsync + rename remain.
      renamed = true;
      renameStarted = performance.now();
    });
  } catch (error) {
    // The fsync or rename failed: the listed overlay never appeared (the template's mode comes back).
    unlist();
    throw stepFailure(renamed ? 'rename' : spec.diskKind === 'raw' ? 'copy' : 'overlay', spec.host, error, signal);
  } finally {
    holder.base?.lock?.release();
    // A failed create that published the shared base leaves no instance over it: remove it
    // again unless another instance uses it meanwhile (pruneSharedBase checks, under its lock).
    if (!renamed && holder.base !== undefined) await pruneSharedBase(holder.base.path);
    // A standalone disk does not depend on the template afterwards.
    release(!renamed || spec.diskKind === 'standalone');
  }
  // fsync + rename happened inside withAtomicPath; record them as the rename step.
  timings.push({ step: 'rename', seconds: (performance.now() - renameStarted) / 1000 });
}

/**
 * Builds the instance's filesystem in `temp`: a sparse copy or a qcow2 overlay, then the e2fs
 * steps. A thin instance of a clean template is built over the shared grown base (made by this
 * instance if there is none yet); `holder.base` names it, with the shared lock the caller releases.
 */
async function buildInto(
  spec: InstanceSpec,
  plan: InstancePlan,
  temp: string,
  run: RunStep,
  steps: PipelineSteps,
  signal: AbortSignal | undefined,
  onProgress: ProgressCallback | undefined,
  holder: BaseHolder,
): Promise<void> {
  const stepSignal = signal ? { signal } : {};
  // The qcow2 overlay is a new private file: its tools write it directly (no overlay, no commit).
  const direct = spec.diskKind === 'raw' ? {} : { direct: true };
  // e2fsck -fn of the template (read-only) runs in a worker while the main thread copies:
  // when the template is clean the copy is too (same allocated blocks), and the preen of the
  // copy would change nothing — it is only run when the template check is not clean.
  const checkController = new AbortController();
  const forward = (): void => checkController.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });
  // A thin instance's template is usually unchanged since its last clean check (it is protected
  // while overlays depend on it): a recorded clean check of the same identity stands.
  const thin = spec.diskKind !== 'raw';
  const identity = thin ? templateIdentity(spec.template) : undefined;
  const knownClean = thin && templateKnownClean(spec.template);
  // The shared grown layer of this template at this size (src/instance/grown-base.ts).
  const basePath = identity !== undefined ? sharedBasePath(dirname(spec.diskPath), spec.template, identity, spec.diskBytes) : undefined;
  if (basePath !== undefined && knownClean && usableSharedBase(basePath, identity!, spec.diskBytes)) {
    const lock = await holdSharedBase(basePath);
    // Checked again under the lock: a destroy may have pruned it meanwhile.
    if (lock && usableSharedBase(basePath, identity!, spec.diskBytes)) holder.base = { path: basePath, lock };
    else lock?.release();
  }
  const onBase = holder.base !== undefined;
  const templateCheck = (knownClean
    ? Promise.resolve({ exitCode: 0, status: 'clean' as const, output: 'clean when last checked (same identity)' })
    : steps.check(spec.template, { mode: 'check', force: true, signal: checkController.signal }).then((outcome) => {
        if (identity !== undefined && outcome.status === 'clean' && outcome.exitCode === 0) recordTemplateClean(spec.template, identity);
        return outcome;
      })
  ).catch((error: unknown) => ({ exitCode: -1, status: 'error' as const, output: String(error) }));
  const warming = steps.warmUp?.(spec.template, checkController.signal).catch(() => undefined);
  // A thin instance reads the template's metadata where it lies: have the kernel read what the
  // last instance's final check read, all at once, before the steps wait for it block by block.
  // The recorded ranges are guest offsets: they are the template file's own only for a raw template.
  const readAhead = identity !== undefined && resolveFormat(spec.template, undefined).format === 'raw' ? identity : undefined;
  const prefetching = thin ? prefetchTemplate(spec.template, readAhead, process.env, holder.base?.path) : Promise.resolve(0);
  let preened = false;
  let preenDone = false;
  try {
    if (spec.diskKind === 'raw') {
      await run('copy', () => steps.copy(spec.template, temp, { size: spec.diskBytes, ...stepSignal, ...(onProgress ? { onProgress } : {}) }));
    } else {
      // The overlay is the copy: its unwritten clusters read from the template, so it is the
      // template (grown) until the steps below write into it.
      await run('overlay', () => steps.overlay(holder.base?.path ?? spec.template, temp, { size: spec.diskBytes, ...stepSignal }));
    }
    await run('preen', async () => {
      const template = await templateCheck;
      throwIfAborted(signal);
      if (template.status === 'clean' && template.exitCode === 0) return;
      preened = true;
      const outcome = await steps.check(temp, { mode: 'preen', force: true, ...direct, ...stepSignal });
      if (outcome.status !== 'clean' && outcome.status !== 'fixed') {
        throw new DiskwrightError('E_FSCK', `the filesystem check (preen) reported ${outcome.status} (exit ${outcome.exitCode}): ${lastLine(outcome.output)}`, {
          hint: `check the template with \`diskwright fsck ${spec.template}\``,
        });
      }
    });
    preenDone = true;
  } finally {
    signal?.removeEventListener('abort', forward);
    // A failed copy or preen: stop the template check and the warm-up instead of waiting.
    if (!preenDone) checkController.abort();
    await templateCheck;
    await warming;
  }
  // Start writing the copied data back now, while resize/render/check run in workers: the
  // fsync before the rename then has only their few changes left to flush.
  let writeback = spec.diskKind === 'raw' ? earlyWriteback(temp) : Promise.resolve();
  // resize2fs wants a fresh e2fsck -f; after a clean check of the template, force it.
  await run('resize', async () => {
    // Over the shared base the filesystem already fills the size: nothing to grow.
    if (onBase) return;
    await steps.grow(temp, { ...stepSignal, ...direct, force: !preened });
    // Only a thin instance publishes one: it is what later lets `instance destroy` remove it.
    if (basePath === undefined || preened || spec.diskKind !== 'thin') return;
    // The template was clean and `temp` holds only resize2fs's changes: it becomes the shared
    // base, and this instance a new overlay over it (a failure here only means no sharing).
    let published: { lock: ImageLock | undefined } | undefined;
    try {
      published = await publishAndHoldSharedBase(temp, basePath, spec.template);
    } catch {
      return;
    }
    if (published === undefined) return;
    holder.base = { path: basePath, lock: published.lock };
    await rm(temp, { force: true });
    await steps.overlay(basePath, temp, { size: spec.diskBytes, ...stepSignal });
  });
  await run('render', async () => {
    const rendered = await steps.render(temp, plan.files, plan.values, signal);
    assertAllRendered(plan, rendered);
  });
  await run('customize', () => steps.customize(temp, plan.customization, { ...(plan.newFsUuid ? { fsUuid: plan.newFsUuid } : {}), ...stepSignal }));
  // The first thin instance of a template records what its final check reads (src/instance/prefetch.ts).
  const recordReads = readAhead !== undefined && !hasReadSet(readAhead);
  // A qcow2 overlay is complete now (the check only reads): its fsync runs beside the check.
  if (spec.diskKind !== 'raw') writeback = earlyWriteback(temp);
  // The gate: nothing is renamed into place unless e2fsck 1.47 finds the whole disk clean. The
  // render and customize sessions skip their open check and the shared layer is not checked on
  // its own because of it (a damaged layer or session is refused here, test/oracle/instance-thin-base).
  await run('check', async () => {
    const outcome = await steps.check(temp, { mode: 'check', force: true, ...(recordReads ? { recordReads } : {}), ...stepSignal });
    if (outcome.status !== 'clean' || outcome.exitCode !== 0) {
      throw new DiskwrightError('E_FSCK', `the final filesystem check of the finished disk is not clean (exit ${outcome.exitCode}): ${lastLine(outcome.output)}`);
    }
    if (recordReads && outcome.reads !== undefined) saveReadSet(spec.template, readAhead, outcome.reads);
  });
  await prefetching;
  await writeback;
  throwIfAborted(signal);
}

function lastLine(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '(no output)';
}

/** Every placeholder the manifest lists for a file must have been replaced in that file. */
function assertAllRendered(plan: InstancePlan, rendered: readonly { path: string; replaced: readonly string[] }[]): void {
  for (const file of plan.files) {
    const done = rendered.find((r) => r.path === file.path);
    const missing = file.placeholders.filter((p) => !done?.replaced.includes(p));
    if (missing.length > 0) {
      throw new DiskwrightError('E_TEMPLATE', `${file.path} in the template does not contain ${missing.join(', ')} although the manifest lists it`, {
        path: file.path,
        hint: 'the template was changed after `template make`; make it again',
      });
    }
  }
}

/** Undoes a failed define: undefine a domain this run created, delete the volume or disk. */
async function rollback(runner: VirtRunner, spec: InstanceSpec, connect: { connect?: string }, volumeCreated: boolean, error: unknown): Promise<void> {
  const problems: string[] = [];
  try {
    if (await domainExists(runner, spec.host, connect)) {
      const result = await runner('virsh', buildVirshUndefineArgs(spec.host, connect));
      if (result.exitCode !== 0) problems.push(`undefine ${spec.host}: ${firstErrorLine(result)}`);
    }
  } catch (e) {
    problems.push(`undefine ${spec.host}: ${(e as Error).message}`);
  }
  if (volumeCreated && spec.pool !== undefined) {
    const result = await runner('virsh', buildVirshVolDeleteArgs(spec.pool, `${spec.host}-disk0`, connect)).catch((e: Error) => ({ exitCode: 1, stdout: '', stderr: e.message }));
    if (result.exitCode !== 0) problems.push(`vol-delete: ${firstErrorLine(result)}`);
  }
  const release = releaseThinInstance(spec.diskPath);
  await rm(spec.diskPath, { force: true });
  await release();
  if (problems.length > 0 && error instanceof Error) {
    error.message += ` (cleanup incomplete: ${problems.join('; ')})`;
  }
}

/** fdatasync of `path` on a libuv thread; never rejects (the final fsync reports real errors). */
async function earlyWriteback(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
  } catch {
    /* the fsync before the rename is the one that counts */
  }
}
