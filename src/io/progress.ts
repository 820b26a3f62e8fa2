/** Progress as plain numbers, the shape every long operation reports. */
export interface Progress {
  /** Bytes (or units) done so far. */
  readonly bytes: number;
  /** Total expected, when known. */
  readonly total?: number;
  /** Bytes per second, when the operation measures it. */
  readonly speed?: number;
  /** Files done so far, for copies of many files. */
  readonly files?: number;
  /** Files expected, when known. */
  readonly totalFiles?: number;
}

/** Callback long operations accept next to their AbortSignal. */
export type ProgressCallback = (progress: Progress) => void;
