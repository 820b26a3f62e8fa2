/**
 * `diskwright partition IMAGE SCRIPT`: writes the partition table an sfdisk script describes, the
 * bytes host `sfdisk IMAGE < SCRIPT` writes on the same blank image. The image is replaced
 * atomically (sparse copy beside it, table written, fsync, rename): a kill leaves the old image.
 */
import { open, stat } from 'node:fs/promises';
import { DiskwrightError } from '../errors.js';
import { withAtomicPath } from '../io/atomic.js';
import { recordFormat } from '../disk/format-record.js';
import { sparseCopyFile } from '../io/copy.js';
import { hasGptSignature } from './gpt.js';
import { encodeDosTable, encodeGpt, type SectorWrite } from './encode.js';
import { resolveScript, type ResolvedLayout, type ResolveOptions } from './layout.js';
import { parseSfdiskScript, type SfdiskScript } from './script.js';
import { readPartitionTable } from './table.js';
import type { PartitionTable } from './types.js';

export interface WriteTableOptions {
  /** Ids sfdisk would generate randomly (label-id, uuids) — tests pass fixed ones. */
  readonly random?: ResolveOptions['random'];
  readonly signal?: AbortSignal;
}

export interface WriteTableResult {
  readonly table: PartitionTable;
  readonly layout: ResolvedLayout;
  /** Script lines sfdisk ignores (unknown headers, `start=0, size=0`), with why. */
  readonly ignored: SfdiskScript['ignored'];
}

/** The sector writes for a script on a blank disk of `diskBytes` (pure). */
export function planPartitionTable(script: SfdiskScript | string, diskBytes: bigint, random?: ResolveOptions['random']): { layout: ResolvedLayout; writes: SectorWrite[] } {
  const parsed = typeof script === 'string' ? parseSfdiskScript(script) : script;
  const layout = resolveScript(parsed, { diskBytes, ...(random ? { random } : {}) });
  const writes = layout.label === 'dos' ? encodeDosTable(layout.dos) : encodeGpt(layout.gpt);
  return { layout, writes };
}

/** Zeroes old GPT headers (LBA 1, last LBA) a new dos label leaves behind, as sfdisk's wipe does. */
async function staleGptWipes(image: string, diskBytes: bigint): Promise<SectorWrite[]> {
  const handle = await open(image, 'r');
  try {
    const wipes: SectorWrite[] = [];
    for (const offset of [512n, diskBytes - 512n]) {
      if (offset < 512n) continue;
      const buffer = new Uint8Array(512);
      await handle.read(buffer, 0, 512, Number(offset));
      if (hasGptSignature(buffer)) wipes.push({ offset, bytes: new Uint8Array(512) });
    }
    return wipes;
  } finally {
    await handle.close();
  }
}

/** Writes `writes` into an open image file. */
export async function applyWritesToFile(path: string, writes: readonly SectorWrite[]): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    for (const w of writes) await handle.write(w.bytes, 0, w.bytes.length, Number(w.offset));
  } finally {
    await handle.close();
  }
}

/**
 * Partitions an existing image file as `sfdisk IMAGE < SCRIPT` would: a new dos or GPT label from
 * the script (any old table is replaced). Bad scripts fail with E_SCRIPT naming the line, before
 * anything is written.
 */
export async function writePartitionTable(image: string, scriptText: string, options: WriteTableOptions = {}): Promise<WriteTableResult> {
  const info = await stat(image).catch((error: NodeJS.ErrnoException) => {
    throw new DiskwrightError(error.code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `${image}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, {
      path: image,
      hint: 'create the image first: diskwright create IMAGE --size 8G',
      cause: error,
    });
  });
  if (!info.isFile()) throw new DiskwrightError('E_INVALID_ARGUMENT', `${image} is not a regular file (diskwright partitions raw image files)`, { path: image });
  const script = parseSfdiskScript(scriptText);
  const { layout, writes } = planPartitionTable(script, BigInt(info.size), options.random);
  if (layout.label === 'dos') writes.unshift(...(await staleGptWipes(image, BigInt(info.size))));
  await withAtomicPath(
    image,
    async (temp) => {
      await sparseCopyFile(image, temp, { ...(options.signal ? { signal: options.signal } : {}) });
      await applyWritesToFile(temp, writes);
      // The copy is a new file: keep (or give) the raw record, so a guest's qcow2 header is never believed.
      recordFormat(temp, 'raw');
    },
    { overwrite: true, ...(options.signal ? { signal: options.signal } : {}) },
  );
  return { table: await readPartitionTable(image), layout, ignored: script.ignored };
}
