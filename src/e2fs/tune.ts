import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { changeInPlace, runToolOnOverlay } from './in-place.js';
import { imageSpec } from './run.js';
import { dumpFilesystemHeader, headerNeedsRecovery } from './dump.js';

export interface TuneFilesystemOptions {
  readonly offset?: number | bigint;
  /** tune2fs options, e.g. ['-L', 'root', '-U', 'random'] (the device is appended). */
  readonly args: readonly string[];
  readonly fakeTime?: number;
  /** Tune even when the journal needs recovery (changes may be lost when it is replayed). */
  readonly allowNeedsRecovery?: boolean;
  readonly signal?: AbortSignal;
}

export interface TuneResult {
  readonly exitCode: number;
  readonly output: string;
}

/** Changes filesystem parameters with the WebAssembly tune2fs; a non-zero exit is E_EXTFS (nothing is written then). */
export async function tuneFilesystem(image: string, options: TuneFilesystemOptions): Promise<TuneResult> {
  if (!Array.isArray(options.args) || options.args.length === 0) {
    throw new InvalidArgumentError('Expected `args` to list at least one filesystem setting to change, got none');
  }
  if (!options.allowNeedsRecovery) {
    const fields = await dumpFilesystemHeader(image, { ...(options.offset !== undefined ? { offset: options.offset } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    if (headerNeedsRecovery(fields)) {
      throw new DiskwrightError('E_NEEDS_RECOVERY', `the journal of ${image} needs recovery; refusing to change the filesystem before it is replayed`, {
        path: image,
        hint: 'run `diskwright fsck --fix IMAGE` first (it replays the journal)',
      });
    }
  }
  // tune2fs runs on a copy-on-write overlay; its changes are committed only when it succeeded.
  const { value: result } = await changeInPlace(image, options.signal ? { signal: options.signal } : {}, async (overlay) => {
    const run = await runToolOnOverlay('tune2fs', [...options.args, imageSpec(image, options.offset)], overlay, {
      servedPath: image,
      ...(options.fakeTime !== undefined ? { env: { E2FSPROGS_FAKE_TIME: String(options.fakeTime) } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { value: run, commit: run.exitCode === 0 };
  });
  const output = result.stdout + result.stderr;
  if (result.exitCode !== 0) {
    throw new DiskwrightError('E_EXTFS', `changing the filesystem settings of ${image} (${options.args.join(' ')}) failed: ${lastMessage(output)}`, {
      path: image,
      actual: result.exitCode,
      hint: 'check the settings asked for; run `diskwright fsck` first if the filesystem has errors',
    });
  }
  return { exitCode: result.exitCode, output };
}

/** The most informative line of e2fsprogs output (the last non-banner one). */
export function lastMessage(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^(tune2fs|resize2fs|mke2fs|e2fsck|dumpe2fs) 1\.\d+/.test(l));
  return lines.at(-1) ?? 'no output';
}
