import { statSync } from 'node:fs';
import { resolveFormat, openImage, type FormatSource } from '../open.js';
import type { Disk, DiskFormat } from '../types.js';
import { Qcow2Disk, resolveBacking, type Qcow2Facts } from './image.js';

/** `qemu-img info --output=json`, field for field (the subset diskwright knows). */
export interface ImageInfo {
  readonly filename: string;
  readonly format: DiskFormat;
  readonly 'virtual-size': number;
  /** Bytes the host allocates for the file (st_blocks × 512), as qemu-img reports it. */
  readonly 'actual-size': number;
  readonly 'dirty-flag': boolean;
  readonly 'cluster-size'?: number;
  readonly 'backing-filename'?: string;
  readonly 'full-backing-filename'?: string;
  readonly 'backing-filename-format'?: string;
  readonly 'format-specific'?: {
    readonly type: 'qcow2';
    readonly data: {
      readonly compat: '0.10' | '1.1';
      readonly 'compression-type': 'zlib' | 'zstd';
      readonly 'lazy-refcounts'?: boolean;
      readonly 'refcount-bits': number;
      readonly corrupt?: boolean;
      readonly 'extended-l2'?: boolean;
    };
  };
  /** How diskwright decided the format (not a qemu-img field). */
  readonly 'format-source': FormatSource;
  /** The next layer of the chain, when it was opened (qemu-img info --backing-chain lists these). */
  readonly 'backing-image'?: ImageInfo;
}

function layerInfo(disk: Disk | { path: string; size: number; facts: Qcow2Facts }, source: FormatSource): ImageInfo {
  const format: DiskFormat = 'facts' in disk || disk instanceof Qcow2Disk ? 'qcow2' : disk.format;
  const base = { filename: disk.path, format, 'virtual-size': disk.size, 'actual-size': statSync(disk.path).blocks * 512, 'format-source': source };
  const f = disk instanceof Qcow2Disk ? disk.facts() : 'facts' in disk ? disk.facts : undefined;
  if (!f) return { ...base, 'dirty-flag': false };
  const data = f.version === 2
    ? { compat: f.compat, 'compression-type': f.compressionType, 'refcount-bits': f.refcountBits }
    : { compat: f.compat, 'compression-type': f.compressionType, 'lazy-refcounts': f.lazyRefcounts, 'refcount-bits': f.refcountBits, corrupt: f.corrupt, 'extended-l2': f.extendedL2 };
  return {
    ...base,
    'dirty-flag': f.dirty,
    'cluster-size': f.clusterSize,
    ...(f.backingFile === undefined
      ? {}
      : { 'backing-filename': f.backingFile, 'full-backing-filename': resolveBacking(disk.path, f.backingFile), ...(f.backingFormat ? { 'backing-filename-format': f.backingFormat } : {}) }),
    'format-specific': { type: 'qcow2', data },
    ...('backing' in disk && disk.backing ? { 'backing-image': layerInfo(disk.backing, source) } : {}),
  };
}

/**
 * What `qemu-img info` says about an image, by the same rules diskwright opens images with: a
 * probed qcow2 that names a backing file is described from its header alone (the backing file
 * is not opened).
 */
export function imageInfo(path: string, format?: DiskFormat): ImageInfo {
  const { format: resolved, source } = resolveFormat(path, format);
  if (source === 'probed' && resolved === 'qcow2') return layerInfo({ path, ...Qcow2Disk.inspect(path) }, source);
  const disk = openImage(path, { format: resolved, readOnly: true });
  try {
    return layerInfo(disk, source);
  } finally {
    disk.close();
  }
}
