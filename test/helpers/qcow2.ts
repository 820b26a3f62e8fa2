import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AllocationState, Disk } from '../../src/disk/types.js';

/** Deterministic bytes (xorshift) so failures reproduce. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * A raw image with data, zero stretches and compressible text at odd offsets: exercises partial
 * clusters, runs of clusters and holes at every cluster size.
 */
export function writeMixedRaw(path: string, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set(pattern(70_000, 1), 0);
  bytes.set(pattern(3_000, 2), 300_001);
  const text = new TextEncoder().encode('diskwright qcow2 '.repeat(40_000));
  bytes.set(text.subarray(0, Math.min(text.length, size - 1_100_000)), 1_100_000);
  bytes.set(pattern(5_000, 3), size - 5_000);
  writeFileSync(path, bytes);
  return bytes;
}

/** qemu-img convert -O raw: the oracle's view of the guest-visible bytes. */
export async function qemuRaw(image: string, out: string): Promise<Uint8Array> {
  await execa('qemu-img', ['convert', '-O', 'raw', image, out]);
  return new Uint8Array(readFileSync(out));
}

/** Reads a whole Disk in odd-sized chunks (crossing cluster and subcluster edges). */
export function readAll(disk: Disk, chunk = 100_003): Uint8Array {
  const out = new Uint8Array(disk.size);
  for (let at = 0; at < disk.size; at += chunk) disk.read(out.subarray(at, Math.min(disk.size, at + chunk)), at);
  return out;
}

interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
}

/** `qemu-img map` as one state per `unit` bytes, in the terms of Disk.allocation(). */
export async function qemuMapStates(image: string, size: number, unit: number, args: string[] = []): Promise<AllocationState[]> {
  const { stdout } = await execa('qemu-img', ['map', '--output=json', ...args, image]);
  const states: AllocationState[] = new Array(Math.ceil(size / unit));
  for (const e of JSON.parse(stdout) as MapEntry[]) {
    const state: AllocationState = e.depth > 0 ? 'backing' : e.data ? 'data' : 'zero';
    for (let at = e.start; at < e.start + e.length; at += unit) states[Math.floor(at / unit)] = state;
  }
  return states;
}

/** Disk.allocation() as one state per `unit` bytes. */
export function diskStates(disk: Disk, unit: number): AllocationState[] {
  const states: AllocationState[] = new Array(Math.ceil(disk.size / unit));
  for (const e of disk.allocation(0, disk.size)) {
    for (let at = e.position; at < e.position + e.length; at += unit) states[Math.floor(at / unit)] = e.state;
  }
  return states;
}
