import { libc } from './libc.js';
import type { AllocationExtent } from './types.js';

/** Linux's values (linux/fs.h); macOS swaps them, and libc() is Linux-only. */
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
/** "No data at or after this offset" (lseek(2)). */
const ENXIO = 6;

/** True when {@link fileAllocation} can tell holes from data on this host. */
export function canSeekData(): boolean {
  return libc() !== undefined;
}

/**
 * lseek(2) with SEEK_DATA / SEEK_HOLE, which Node does not expose (through koffi, see libc.ts):
 * the data extents and holes of `[position, position + length)` of the open file `fd`, in order
 * and covering the range exactly, from SEEK_DATA/SEEK_HOLE. Bytes past the end of the file are
 * holes (they read as zeros). Returns undefined where the host cannot tell (no native lseek, or
 * an unexpected error): the caller then treats the range as data. Moves the descriptor's file
 * offset, which positional I/O never uses.
 */
export function fileAllocation(fd: number, position: number, length: number): AllocationExtent[] | undefined {
  const sys = libc();
  if (!sys) return undefined;
  const end = position + length;
  const out: AllocationExtent[] = [];
  const push = (at: number, to: number, state: 'data' | 'zero'): void => {
    if (to <= at) return;
    const last = out[out.length - 1];
    if (last && last.state === state && last.position + last.length === at) out[out.length - 1] = { position: last.position, length: to - last.position, state };
    else out.push({ position: at, length: to - at, state });
  };
  let at = position;
  while (at < end) {
    const data = sys.lseek(fd, at, SEEK_DATA);
    if (data < 0) {
      if (sys.errno() !== ENXIO) return undefined;
      push(at, end, 'zero');
      break;
    }
    const dataStart = Math.min(end, data);
    push(at, dataStart, 'zero');
    if (dataStart >= end) break;
    const hole = sys.lseek(fd, dataStart, SEEK_HOLE);
    if (hole < 0 || hole <= dataStart) return undefined;
    push(dataStart, Math.min(end, hole), 'data');
    at = hole;
  }
  return out;
}
