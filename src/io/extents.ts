/** A byte range `[start, start + length)`. Plain numbers: image sizes stay below 2^53. */
export interface Extent {
  readonly start: number;
  readonly length: number;
}

/** Sorts, drops empty ranges and merges overlapping or touching ones. */
export function normalizeExtents(extents: readonly Extent[]): Extent[] {
  const sorted = extents.filter((e) => e.length > 0).sort((a, b) => a.start - b.start);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.start <= last.start + last.length) {
      const end = Math.max(last.start + last.length, e.start + e.length);
      out[out.length - 1] = { start: last.start, length: end - last.start };
    } else {
      out.push({ start: e.start, length: e.length });
    }
  }
  return out;
}

/** The parts of `extents` inside `[0, length)` (extents are clipped, not shifted). */
export function clipExtents(extents: readonly Extent[], length: number): Extent[] {
  const out: Extent[] = [];
  for (const e of normalizeExtents(extents)) {
    const start = Math.max(0, e.start);
    const end = Math.min(length, e.start + e.length);
    if (end > start) out.push({ start, length: end - start });
  }
  return out;
}

/** Rounds every extent outwards to multiples of `align` (then merges). */
export function alignExtents(extents: readonly Extent[], align: number): Extent[] {
  return normalizeExtents(
    extents.map((e) => {
      const start = Math.floor(e.start / align) * align;
      const end = Math.ceil((e.start + e.length) / align) * align;
      return { start, length: end - start };
    }),
  );
}

/** Total bytes covered by (normalized) extents. */
export function extentBytes(extents: readonly Extent[]): number {
  return normalizeExtents(extents).reduce((sum, e) => sum + e.length, 0);
}

/** The parts covered by both `a` and `b` (normalized). */
export function intersectExtents(a: readonly Extent[], b: readonly Extent[]): Extent[] {
  const x = normalizeExtents(a);
  const y = normalizeExtents(b);
  const out: Extent[] = [];
  for (let i = 0, j = 0; i < x.length && j < y.length; ) {
    const start = Math.max(x[i]!.start, y[j]!.start);
    const endX = x[i]!.start + x[i]!.length;
    const endY = y[j]!.start + y[j]!.length;
    const end = Math.min(endX, endY);
    if (end > start) out.push({ start, length: end - start });
    if (endX <= endY) i++;
    else j++;
  }
  return out;
}

/** Merges extents whose gap is at most `gap` bytes (fewer, larger reads; the gaps are read too). */
export function coalesceExtents(extents: readonly Extent[], gap: number): Extent[] {
  const out: Extent[] = [];
  for (const e of normalizeExtents(extents)) {
    const last = out[out.length - 1];
    if (last && e.start - (last.start + last.length) <= gap) out[out.length - 1] = { start: last.start, length: e.start + e.length - last.start };
    else out.push(e);
  }
  return out;
}
