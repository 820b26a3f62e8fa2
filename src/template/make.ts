import { rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { DiskFormat } from '../disk/types.js';
import { DiskwrightError, InvalidArgumentError, isDiskwrightError, throwIfAborted } from '../errors.js';
import { assertOutputWritable, tempPathBeside } from '../io/atomic.js';
import { commitRenames, completePendingRenames, hasPendingRenames } from '../io/rename-set.js';
import { removeLeftoverTemps } from '../disk/with-image.js';
import { extractPartition } from '../io/index.js';
import { convertImage } from '../disk/qcow2/convert.js';
import type { ProgressCallback } from '../io/progress.js';
import { getPartition, readPartitionTable } from '../partition/index.js';
import { applyTemplateOperations } from './apply.js';
import { openFilesystem, readFilesystemFacts } from './filesystem.js';
import { findKernel, stageKernel, type StagedKernel } from './kernel.js';
import { withFilesystem } from '../ext/index.js';
import { INTERFACE_NAME, manifestPath, serializeTemplateManifest, type TemplateManifest } from './manifest.js';
import { DEFAULT_INTERFACE, selectOperations } from './operations/index.js';

export interface MakeTemplateOptions {
  /** Partition number holding the root filesystem. */
  readonly partition: number;
  /** The template file to write (a filesystem image, like the article's `dd` output). */
  readonly output: string;
  /** Run only these operations (default: all). */
  readonly ops?: readonly string[];
  /** Do not run these operations. */
  readonly skip?: readonly string[];
  /**
   * The instance NIC name the network configuration is written for. Default eth0, with
   * `net.ifnames=0` recorded for the instances' kernel command line (see docs/template.md).
   */
  readonly interface?: string;
  /** Also copy the newest kernel and initrd here; the manifest records their absolute paths. */
  readonly kernelDir?: string;
  /**
   * Replay the ext journal of a filesystem that was not cleanly unmounted (in the template copy;
   * the source disk is never written). Without it such a filesystem is refused.
   */
  readonly replayJournal?: boolean;
  /** Replace an existing template, manifest and kernel files. */
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  /** Progress of the partition copy. */
  readonly onProgress?: ProgressCallback;
  /**
   * The source disk's format (`--format raw|qcow2`, e.g. a cloud image); default: diskwright's
   * record, else the qcow2 magic. The template's own format is {@link outputFormat}.
   */
  readonly format?: DiskFormat;
  /**
   * The template's own format (`-O raw|qcow2`, default raw): `qcow2` converts the finished
   * filesystem image into a qcow2 (unallocated and all-zero clusters left out) as the last step.
   */
  readonly outputFormat?: DiskFormat;
  /**
   * The steps as they start and finish: `check source`, `extract pN`, `operation NAME` for each
   * selected operation, `commit` (the edits into the copy), `kernel copy`, `convert to qcow2`
   * (with `outputFormat: 'qcow2'`), `manifest`.
   */
  readonly onStep?: (event: TemplateStepEvent) => void;
}

/** One step of {@link makeTemplate} starting or finishing (`done` carries its time). */
export interface TemplateStepEvent {
  readonly step: string;
  readonly phase: 'start' | 'done';
  readonly seconds?: number;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Makes a template from a disk image: copies partition N out (sparse, like the article's `dd`),
 * applies the sysprep operations to the copy and writes the manifest beside it. Everything
 * happens in a temp file beside `output` that is renamed only when all steps succeeded: a failure
 * or abort leaves no template, no manifest and no kernel files. The source disk is only read.
 */
export async function makeTemplate(disk: string, options: MakeTemplateOptions): Promise<TemplateManifest> {
  if (!Number.isSafeInteger(options.partition) || options.partition < 1) {
    throw new InvalidArgumentError(`Expected \`partition\` to be a partition number (1 or more), got \`${options.partition}\``);
  }
  // Bad operation names and interface names fail before any work.
  selectOperations(options.ops, options.skip);
  const nic = options.interface ?? DEFAULT_INTERFACE;
  if (!INTERFACE_NAME.test(nic) || nic === 'lo') {
    throw new InvalidArgumentError(`Expected \`--interface\` to be a network interface name (up to 15 letters, digits, _ . -; not lo), got \`${nic}\``);
  }
  if (options.outputFormat !== undefined && options.outputFormat !== 'raw' && options.outputFormat !== 'qcow2') {
    throw new InvalidArgumentError(`Expected \`output-format\` to be raw or qcow2, got \`${String(options.outputFormat)}\``);
  }
  const output = resolve(options.output);
  const source = resolve(disk);
  if (output === source) throw new InvalidArgumentError('the template must not be the source disk itself', { path: output });
  const manifestFile = manifestPath(output);
  // A killed run that got past its commit point is completed first (roll forward), and temp files
  // of killed runs beside the outputs are removed: the next run sees an old or a new pair.
  completePendingRenames(output);
  removeLeftoverTemps(output);
  removeLeftoverTemps(manifestFile);
  const outDirStat = await stat(dirname(output)).catch(() => undefined);
  if (!outDirStat?.isDirectory()) {
    throw new DiskwrightError('E_NOT_FOUND', `directory ${dirname(output)} for the template does not exist`, {
      path: dirname(output),
      hint: 'create it first or choose another -o path',
    });
  }
  if (!options.overwrite) {
    for (const path of [output, manifestFile]) {
      if (await exists(path)) {
        throw new DiskwrightError('E_EXISTS', `${path} already exists`, { path, hint: 'choose another -o path or pass --force to replace it' });
      }
    }
  }
  // The output can be written (and an image there has no pending commit), before any reading.
  await assertOutputWritable(output, { overwrite: options.overwrite });
  const format = options.format ? { format: options.format } : {};
  const table = await readPartitionTable(source, format);
  const partition = getPartition(table, options.partition);
  if (partition.kind === 'extended') {
    throw new InvalidArgumentError(`partition ${partition.number} is the extended container, not a filesystem`, {
      hint: 'pick the partition holding the root filesystem (see `diskwright partitions`)',
    });
  }
  const onStep = options.onStep;
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    onStep?.({ step: name, phase: 'start' });
    const started = performance.now();
    const value = await fn();
    onStep?.({ step: name, phase: 'done', seconds: (performance.now() - started) / 1000 });
    return value;
  };
  await step('check source', () => precheckSource(source, disk, partition.number, options.kernelDir !== undefined, options.signal, options.format));
  let staged: StagedKernel | undefined;
  const temp = tempPathBeside(output);
  // A qcow2 template is converted from the finished raw copy into a second temp beside the output.
  const qcow2Temp = options.outputFormat === 'qcow2' ? tempPathBeside(output) : undefined;
  const manifestTemp = tempPathBeside(manifestFile);
  try {
    await step(`extract p${partition.number}`, () =>
      extractPartition(source, partition.number, temp, {
        ...format,
        overwrite: true,
        signal: options.signal,
        onProgress: options.onProgress,
      }),
    );
    throwIfAborted(options.signal);
    const filesystem = await readFilesystemFacts(temp).catch((error: unknown) => {
      if (isDiskwrightError(error, 'E_BAD_SIGNATURE')) {
        throw new DiskwrightError('E_BAD_SIGNATURE', `partition ${partition.number} of ${disk} holds no ext2/3/4 filesystem`, {
          path: disk,
          hint: 'pick the partition holding the root filesystem (see `diskwright partitions`)',
          cause: error,
        });
      }
      throw error;
    });
    let committing: number | undefined;
    const applied = await openFilesystem(
      temp,
      {
        write: true,
        scratch: true,
        replayJournal: options.replayJournal === true,
        signal: options.signal,
        onCommit: () => {
          committing = performance.now();
          onStep?.({ step: 'commit', phase: 'start' });
        },
      },
      (fs) =>
        applyTemplateOperations(fs, {
          ops: options.ops,
          skip: options.skip,
          signal: options.signal,
          context: { interface: nic, filesystem: { uuid: filesystem.uuid, label: filesystem.label ?? '' } },
          ...(onStep ? { onOperation: (event) => onStep({ step: `operation ${event.name}`, phase: event.phase, ...(event.seconds === undefined ? {} : { seconds: event.seconds }) }) } : {}),
        }),
    ).catch((error: unknown) => {
      // The session names the temp copy; say which partition of which disk it is.
      if (isDiskwrightError(error, 'E_NEEDS_RECOVERY')) {
        throw new DiskwrightError('E_NEEDS_RECOVERY', `partition ${partition.number} of ${disk}: the ext journal needs recovery (the filesystem was not cleanly unmounted)`, {
          path: disk,
          hint: 'pass --replay-journal to replay it in the template copy (the source disk is not written), or shut the VM down cleanly first',
          cause: error,
        });
      }
      throw error;
    });
    if (committing !== undefined) onStep?.({ step: 'commit', phase: 'done', seconds: (performance.now() - committing) / 1000 });
    throwIfAborted(options.signal);
    let kernel: TemplateManifest['kernel'];
    const kernelDir = options.kernelDir;
    if (kernelDir !== undefined) {
      staged = await step('kernel copy', () =>
        openFilesystem(temp, { signal: options.signal }, (fs) => stageKernel(fs, { outDir: kernelDir, overwrite: options.overwrite, signal: options.signal })),
      );
      kernel = staged.files;
    }
    if (qcow2Temp !== undefined) {
      await step('convert to qcow2', () => convertImage(temp, qcow2Temp, { inputFormat: 'raw', outputFormat: 'qcow2', ...(options.signal ? { signal: options.signal } : {}) }));
      throwIfAborted(options.signal);
    }
    onStep?.({ step: 'manifest', phase: 'start' });
    const manifestStarted = performance.now();
    const manifest: TemplateManifest = {
      version: 1,
      createdAt: new Date().toISOString(),
      source: {
        disk: source,
        partition: partition.number,
        start: Number(partition.start),
        sectors: Number(partition.size),
        sectorSize: table.sectorSize,
      },
      filesystem,
      files: applied.files,
      operations: applied.operations,
      ...(kernel ? { kernel } : {}),
      network: { interface: nic },
      // eth0 is the kernel's own name for the first NIC; predictable naming would rename it.
      kernelArgs: [...(nic === DEFAULT_INTERFACE ? ['net.ifnames=0'] : []), ...applied.kernelArgs],
    };
    await writeFile(manifestTemp, serializeTemplateManifest(manifest), { flag: 'wx', mode: 0o644 });
    throwIfAborted(options.signal);
    if (!options.overwrite) for (const path of [output, manifestFile]) await assertAbsentNow(path);
    await staged?.assertFinalsAbsent();
    // Template, manifest and kernel files appear as one set (old or new after a crash).
    commitRenames(output, [[qcow2Temp ?? temp, output], [manifestTemp, manifestFile], ...(staged?.renames ?? [])]);
    onStep?.({ step: 'manifest', phase: 'done', seconds: (performance.now() - manifestStarted) / 1000 });
    // The raw copy the qcow2 was made from (a leftover of a kill here is removed by the next run).
    if (qcow2Temp !== undefined) await rm(temp, { force: true });
    return manifest;
  } catch (error) {
    // Past the commit point the temps are what the next run completes the set from: keep them.
    if (hasPendingRenames(output)) throw error;
    // Nothing was renamed: remove what this run wrote beside the outputs.
    await staged?.discard();
    await Promise.all([rm(temp, { force: true }), rm(manifestTemp, { force: true }), ...(qcow2Temp ? [rm(qcow2Temp, { force: true })] : [])]);
    throw error;
  }
}

async function assertAbsentNow(path: string): Promise<void> {
  if (await exists(path)) throw new DiskwrightError('E_EXISTS', `${path} already exists`, { path, hint: 'choose another -o path or pass --force to replace it' });
}

/**
 * Reads the source partition in place, before the full extract: it must be a root filesystem (an
 * /etc directory), and with --kernel-dir it must hold a kernel — both found in a second, not
 * after copying gigabytes. A filesystem that cannot be opened read-only is left to the main path.
 */
async function precheckSource(source: string, disk: string, partition: number, wantKernel: boolean, signal: AbortSignal | undefined, format: DiskFormat | undefined): Promise<void> {
  const problem = await withFilesystem(source, { partition, ...(signal ? { signal } : {}), ...(format ? { format } : {}) }, async (fs) => {
    const etc = await fs.stat('/etc').catch(() => undefined);
    if (etc?.kind !== 'directory') {
      return new DiskwrightError('E_TEMPLATE', `partition ${partition} of ${disk} has no /etc: it is not a root filesystem, so there is nothing to templatize`, {
        path: disk,
        hint: 'pick the partition holding the root filesystem (see `diskwright partitions`); a separate /boot or data partition cannot be a template',
      });
    }
    if (wantKernel) {
      const missing = await findKernel(fs).then(() => undefined, (error: unknown) => error);
      if (missing !== undefined) {
        return new DiskwrightError('E_NOT_FOUND', `partition ${partition} of ${disk} has no kernel (/boot/vmlinuz-*)`, {
          path: disk,
          hint: 'drop --kernel-dir (then pass --kernel to instance create), or, for a separate /boot partition, run `diskwright kernel DISK --partition N -o DIR` on it',
          cause: missing,
        });
      }
    }
    return undefined;
  }).catch((error: unknown) => {
    // Unreadable here (no ext filesystem, a journal needing recovery, …): the main path reports it.
    if (error instanceof DiskwrightError && error.code !== 'E_ABORTED') return undefined;
    throw error;
  });
  if (problem) throw problem;
}
