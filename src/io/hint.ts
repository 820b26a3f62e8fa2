import { readUsedBlockRanges } from '../extmeta/index.js';
import type { Extent } from './extents.js';

/**
 * Allocated blocks of an ext filesystem at `offset`, as a read-speed hint (buffered reads there,
 * O_DIRECT elsewhere); undefined when there is no ext filesystem or its layout is unsupported.
 * Every byte is still read and tested, so a wrong hint costs speed, never correctness.
 */
export async function allocatedHint(imagePath: string, offset: number): Promise<Extent[] | undefined> {
  try {
    const ranges = await readUsedBlockRanges(imagePath, { offset });
    return ranges.map((r) => ({ start: Number(r.start), length: Number(r.length) }));
  } catch {
    return undefined;
  }
}
