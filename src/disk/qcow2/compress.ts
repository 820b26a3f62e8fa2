import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import type { ZlibOptions } from 'node:zlib';
import type { Decompress as ZstdDecompress } from 'fzstd';
import { DiskwrightError } from '../../errors.js';
import { lazyZlib } from '../../lazy-node.js';
import type { CompressionType } from './header.js';

/** deflateRaw as a promise, made at the first compression (node:zlib loads only then). */
let deflateRawAsync: ((data: Uint8Array, options: ZlibOptions) => Promise<Buffer>) | undefined;
const require = createRequire(import.meta.url);
let zstd: typeof ZstdDecompress | undefined;

/** fzstd on first use: only zstd images need it, and loading it costs every start ~40 ms cold. */
function zstdDecompress(): typeof ZstdDecompress {
  zstd ??= (require('fzstd') as { Decompress: typeof ZstdDecompress }).Decompress;
  return zstd;
}

function damaged(offset: number, cause: unknown): DiskwrightError {
  return new DiskwrightError('E_OUT_OF_RANGE', `qcow2: the compressed cluster at ${offset} does not decompress`, { offset, cause, hint: 'the image is damaged; `qemu-img check` may tell more' });
}

/**
 * Decompresses one compressed cluster into `out` (exactly one cluster). The input may carry
 * trailing bytes of the next compressed cluster (qcow2.txt: decompression stops when a cluster of
 * data has been produced); output is capped at the cluster size, so a bomb costs one cluster.
 */
export function decompressCluster(type: CompressionType, input: Uint8Array, out: Uint8Array, offset: number): void {
  if (type === 'zlib') {
    let data: Buffer;
    try {
      const zlib = lazyZlib();
      data = zlib.inflateRawSync(input, { maxOutputLength: out.length, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (error) {
      // A stream that fills the cluster exactly and then has more output is still a damaged one.
      throw damaged(offset, error);
    }
    if (data.length !== out.length) throw damaged(offset, new Error(`inflated to ${data.length} bytes, not ${out.length}`));
    out.set(data);
    return;
  }
  // zstd: QEMU writes one frame; stream it and stop at a cluster's worth (trailing bytes ignored).
  let filled = 0;
  const Decompress = zstdDecompress();
  const stream = new Decompress((chunk) => {
    const take = Math.min(chunk.length, out.length - filled);
    out.set(chunk.subarray(0, take), filled);
    filled += take;
  });
  try {
    const step = 4096;
    for (let at = 0; at < input.length && filled < out.length; at += step) {
      stream.push(input.subarray(at, Math.min(input.length, at + step)));
    }
  } catch (error) {
    if (filled < out.length) throw damaged(offset, error);
  }
  // More output than a cluster is the next packed cluster's frame, which is not ours to check.
  if (filled !== out.length) throw damaged(offset, new Error(`zstd produced ${filled} bytes, not ${out.length}`));
}

/**
 * Compresses one cluster the way QEMU does (raw deflate, window bits 12), on the libuv thread
 * pool so several clusters compress in parallel. Returns undefined when compression does not
 * save space (the cluster is then stored uncompressed, as qemu-img does).
 */
export async function compressCluster(data: Uint8Array): Promise<Uint8Array | undefined> {
  deflateRawAsync ??= promisify(lazyZlib().deflateRaw);
  const out = await deflateRawAsync(data, { windowBits: 12, memLevel: 9 });
  return out.length < data.length ? out : undefined;
}
