import { execa } from 'execa';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createQcow2 } from '../../src/disk/qcow2/index.js';
import { binPath } from './cli.js';
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

/** Runs the built CLI under strace; returns its exit code, stderr and every path it touched. */
export async function tracedCli(scratch: string, args: readonly string[]): Promise<{ code: number; stderr: string; trace: string }> {
  const log = join(scratch, `trace-${Math.random().toString(36).slice(2)}.log`);
  const result = await execa('strace', ['-f', '-qq', '-e', 'trace=%file', '-o', log, process.execPath, binPath, ...args], { reject: false });
  return { code: result.exitCode ?? -1, stderr: result.stderr, trace: readFileSync(log, 'utf8') };
}

/**
 * What a guest does to its raw disk: writes a qcow2 header (512-byte clusters) naming `backing`
 * into sector 0 through the existing file, so the file and its xattrs stay.
 */
export function plantQcow2Header(disk: string, backing: string, scratch: string): void {
  const fake = join(scratch, `fake-${Math.random().toString(36).slice(2)}.qcow2`);
  createQcow2(fake, { size: 1024 * 1024, clusterSize: 512, backingFile: backing, backingFormat: 'raw' });
  const header = readFileSync(fake);
  const fd = openSync(disk, 'r+');
  try {
    writeSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
}
