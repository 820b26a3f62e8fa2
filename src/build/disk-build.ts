/**
 * `disk build`: a whole partitioned disk in one atomic step — a sparse image of the given size, the
 * partition table of an sfdisk script (byte-identical to sfdisk's), then each filesystem or swap
 * area, filled from a directory or a tar archive. Everything is written into a temp file beside
 * OUT and renamed when complete, so an interrupted build leaves no OUT (and an old OUT intact).
 */
import { open } from 'node:fs/promises';
import { DiskwrightError, InvalidArgumentError, throwIfAborted } from '../errors.js';
import { withAtomicPath } from '../io/atomic.js';
import { recordFormat } from '../disk/format-record.js';
import { planPartitionTable, applyWritesToFile } from '../partition/write.js';
import { parseSfdiskScript } from '../partition/script.js';
import type { ResolvedLayout } from '../partition/layout.js';
import { makeFilesystemInPartition, type PartitionFsResult, type PartitionFsType } from './partition-fs.js';
import type { FillProgress, OwnerOption } from './fill.js';

/** One filesystem of the build: `--fs 1=ext3,label=root:rootfs.tar`. */
export interface FilesystemSpec {
  readonly partition: number;
  readonly type: PartitionFsType;
  /** A host directory or a tar archive (plain, .gz, .xz, .zst). */
  readonly from?: string;
  readonly label?: string;
  readonly uuid?: string;
}

export interface DiskBuildOptions {
  /** Image size in bytes (a multiple of 512). */
  readonly size: number;
  /** The sfdisk script text. */
  readonly layout: string;
  readonly filesystems: readonly FilesystemSpec[];
  /** Owner mapping for the files copied in (see fill.ts). */
  readonly owner?: OwnerOption;
  /** Fixed creation time (seconds) and hash seed for reproducible images. */
  readonly fakeTime?: number;
  readonly hashSeed?: string;
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  /** Called when a step starts: `partition table`, `partition 1: ext3 from rootfs.tar`, … */
  readonly onStep?: (step: { readonly index: number; readonly count: number; readonly title: string }) => void;
  /** Files and bytes copied by the current fill. */
  readonly onFillProgress?: (progress: FillProgress) => void;
}

export interface DiskBuildResult {
  readonly output: string;
  readonly size: number;
  readonly layout: ResolvedLayout;
  readonly filesystems: readonly PartitionFsResult[];
}

const FS_TYPES: readonly PartitionFsType[] = ['ext2', 'ext3', 'ext4', 'swap'];

/** Parses `N=TYPE[,label=L][,uuid=U][:SOURCE]`. */
export function parseFilesystemSpec(text: string): FilesystemSpec {
  const m = /^([1-9][0-9]{0,2})=([^:]+)(?::(.+))?$/.exec(text);
  if (!m) throw new InvalidArgumentError(`Expected --fs like 1=ext3:rootfs.tar or 5=swap, got \`${text}\``, { hint: 'N=TYPE[,label=L][,uuid=U][:DIR|TARBALL]' });
  const [typeText, ...opts] = m[2]!.split(',');
  const type = typeText as PartitionFsType;
  if (!FS_TYPES.includes(type)) throw new InvalidArgumentError(`Expected the type in --fs \`${text}\` to be ext2, ext3, ext4 or swap, got \`${typeText}\``);
  let label: string | undefined;
  let uuid: string | undefined;
  for (const opt of opts) {
    const [key, value] = opt.split('=', 2);
    if (key === 'label' && value !== undefined) label = value;
    else if (key === 'uuid' && value !== undefined) uuid = value;
    else throw new InvalidArgumentError(`Expected label=… or uuid=… in --fs \`${text}\`, got \`${opt}\``);
  }
  if (type === 'swap' && m[3] !== undefined) throw new InvalidArgumentError(`A swap area has no contents: drop \`:${m[3]}\` from --fs \`${text}\``);
  return { partition: Number(m[1]), type, ...(m[3] !== undefined ? { from: m[3] } : {}), ...(label !== undefined ? { label } : {}), ...(uuid !== undefined ? { uuid } : {}) };
}

/** Builds the whole disk OUT atomically. */
export async function buildDisk(output: string, options: DiskBuildOptions): Promise<DiskBuildResult> {
  if (!Number.isSafeInteger(options.size) || options.size <= 0 || options.size % 512 !== 0) {
    throw new InvalidArgumentError(`Expected \`size\` to be a positive multiple of 512 bytes, got \`${options.size}\``);
  }
  const seen = new Set<number>();
  for (const fs of options.filesystems) {
    if (seen.has(fs.partition)) throw new InvalidArgumentError(`Expected one --fs per partition, got two for partition ${fs.partition}`);
    seen.add(fs.partition);
  }
  // Everything that can be checked before the image exists is checked first (no half work).
  const script = parseSfdiskScript(options.layout);
  const plan = planPartitionTable(script, BigInt(options.size));
  const numbers = plan.layout.label === 'dos'
    ? [...plan.layout.dos.primaries.map((p, i) => (p ? i + 1 : 0)), ...(plan.layout.dos.logicals ?? []).map((_p, i) => i + 5)]
    : plan.layout.gpt.partitions.map((p) => p.index);
  for (const fs of options.filesystems) {
    if (!numbers.includes(fs.partition)) {
      throw new DiskwrightError('E_NO_PARTITION', `--fs ${fs.partition}=${fs.type}: the layout has no partition ${fs.partition} (partitions: ${numbers.filter((n) => n > 0).join(', ')})`, { hint: 'check the numbers against the layout' });
    }
  }
  const count = 1 + options.filesystems.length;
  const results: PartitionFsResult[] = [];
  await withAtomicPath(
    output,
    async (temp) => {
      const handle = await open(temp, 'wx', 0o644);
      try {
        await handle.truncate(options.size);
      } finally {
        await handle.close();
      }
      options.onStep?.({ index: 1, count, title: `partition table (${plan.layout.label}, ${numbers.filter((n) => n > 0).length} partitions)` });
      await applyWritesToFile(temp, plan.writes);
      for (const [i, fs] of options.filesystems.entries()) {
        throwIfAborted(options.signal);
        options.onStep?.({ index: i + 2, count, title: `partition ${fs.partition}: ${fs.type}${fs.from !== undefined ? ` from ${fs.from}` : ''}` });
        results.push(
          await makeFilesystemInPartition(temp, fs.partition, {
            type: fs.type,
            direct: true,
            ...(fs.from !== undefined ? { from: fs.from } : {}),
            ...(fs.label !== undefined ? { label: fs.label } : {}),
            ...(fs.uuid !== undefined ? { uuid: fs.uuid } : {}),
            ...(options.owner !== undefined ? { owner: options.owner } : {}),
            ...(options.fakeTime !== undefined ? { fakeTime: options.fakeTime } : {}),
            ...(options.hashSeed !== undefined && fs.type !== 'swap' ? { hashSeed: options.hashSeed } : {}),
            ...(options.onFillProgress ? { onFillProgress: options.onFillProgress } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
          }),
        );
      }
      // diskwright made this disk raw: a qcow2 header its guest writes is never believed (docs/qcow2.md).
      recordFormat(temp, 'raw');
    },
    { overwrite: options.force === true, ...(options.signal ? { signal: options.signal } : {}) },
  );
  return { output, size: options.size, layout: plan.layout, filesystems: results };
}
