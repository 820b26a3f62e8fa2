/** Where a multi-pass tool (e2fsck, resize2fs) is: the pass and how far through it. */
export interface PassProgress {
  /** 1-based pass number. */
  readonly pass: number;
  /** How many passes the tool has (e2fsck: 5; resize2fs: 5, most runs use only some). */
  readonly passes: number;
  /** What the pass does, in lower case (`checking directory structure`). */
  readonly name: string;
  /** 0–1 through this pass. */
  readonly fraction: number;
}

export type PassCallback = (progress: PassProgress) => void;

/** e2fsck's own names of its passes (e2fsck/pass*.c, the "Pass N: …" lines). */
export const E2FSCK_PASSES = [
  'checking inodes, blocks, and sizes',
  'checking directory structure',
  'checking directory connectivity',
  'checking reference counts',
  'checking group summary information',
] as const;

/** The overall percentage at which each e2fsck pass starts and ends (e2fsck/unix.c, e2fsck_tbl). */
const E2FSCK_PERCENT_TABLE = [0, 70, 90, 92, 95, 100] as const;

/** resize2fs -p's labels (resize/main.c, resize_progress_func) by pass number. */
export const RESIZE2FS_PASSES = ['extending the inode table', 'relocating blocks', 'scanning inode table', 'updating inode references', 'moving inode table'] as const;

/** resize2fs -p draws 40 `X`s per pass (lib/ext2fs/progress.c, ext2fs_progress_update's width). */
const RESIZE2FS_BAR_WIDTH = 40;

/** Text a progress filter passes on (the tool's output without its bar) and flushes at the end. */
export interface OutputFilter {
  /** Consumes a chunk; returns the part that is not progress drawing. */
  write(text: string): string;
  /** What was held back (an unfinished bar segment is dropped, other text returned). */
  flush(): string;
}

/** Turns an overall e2fsck percentage into the pass and the fraction through it. */
export function e2fsckPassAt(percent: number): { pass: number; fraction: number } {
  const table = E2FSCK_PERCENT_TABLE;
  let pass = 1;
  while (pass < table.length - 1 && percent >= table[pass]!) pass++;
  const span = table[pass]! - table[pass - 1]!;
  return { pass, fraction: Math.max(0, Math.min(1, (percent - table[pass - 1]!) / span)) };
}

/**
 * Reads the progress bar `e2fsck -C 0` draws on stdout — segments `\x01DEVICE: |===  | 42.1%\r\x02`
 * (the \x01/\x02 brackets are e2fsck's, for fsck -C) — and the `Pass N:` lines, reports passes
 * to `onPass`, and returns the output with the bar removed, so logs read as without -C.
 */
export function e2fsckProgressFilter(onPass: PassCallback): OutputFilter {
  let held = '';
  let linePass: number | undefined;
  let lastKey = '';
  const report = (pass: number, fraction: number): void => {
    const key = `${pass}:${fraction.toFixed(3)}`;
    if (key === lastKey) return;
    lastKey = key;
    onPass({ pass, passes: E2FSCK_PASSES.length, name: E2FSCK_PASSES[pass - 1] ?? `pass ${pass}`, fraction });
  };
  let line = '';
  /** Plain output in order: a `Pass N:` line (possibly split across chunks) starts pass N. */
  const plain = (piece: string): void => {
    line += piece;
    const lines = line.split('\n');
    line = lines.pop()!;
    for (const text of [...lines, line]) {
      const match = /^Pass (\d)[A-D]?: /.exec(text);
      if (match && Number(match[1]) !== linePass) {
        linePass = Number(match[1]);
        report(linePass, 0);
      }
    }
  };
  return {
    write(chunk) {
      let text = held + chunk;
      held = '';
      let out = '';
      for (;;) {
        const start = text.indexOf('\x01');
        if (start < 0) break;
        const end = text.indexOf('\x02', start);
        if (end < 0) {
          held = text.slice(start);
          text = text.slice(0, start);
          break;
        }
        out += text.slice(0, start);
        plain(text.slice(0, start));
        const percent = /(\d+(?:\.\d+)?)%/.exec(text.slice(start, end));
        if (percent) {
          const at = e2fsckPassAt(Number(percent[1]));
          // The "Pass N:" line is authoritative where e2fsck prints one (not with -p).
          report(linePass !== undefined && linePass > at.pass ? linePass : at.pass, linePass !== undefined && linePass > at.pass ? 0 : at.fraction);
        }
        text = text.slice(end + 1);
      }
      out += text;
      plain(text);
      return out;
    },
    flush() {
      const rest = held.startsWith('\x01') ? '' : held;
      held = '';
      return rest;
    },
  };
}

/**
 * Reads `resize2fs -p` output — `Begin pass N (max = M)`, a label, then 40 `X`s as the pass
 * advances — and reports passes to `onPass`. The output itself is left as it is.
 */
export function resize2fsProgressReader(onPass: PassCallback): (text: string) => void {
  // The output is small and arrives in arbitrary pieces: rescan from the current pass's start.
  let seen = '';
  const reported = new Map<number, number>();
  return (text) => {
    seen += text;
    const starts = [...seen.matchAll(/Begin pass (\d+) \(max = \d+\)/g)];
    starts.forEach((start, i) => {
      const pass = Number(start[1]);
      const body = seen.slice(start.index + start[0].length, starts[i + 1]?.index ?? seen.length);
      const marks = Math.min(RESIZE2FS_BAR_WIDTH, (body.match(/X/g) ?? []).length);
      if (reported.get(pass) === marks) return;
      if (!reported.has(pass) && marks > 0) onPass({ pass, passes: RESIZE2FS_PASSES.length, name: RESIZE2FS_PASSES[pass - 1] ?? `pass ${pass}`, fraction: 0 });
      reported.set(pass, marks);
      onPass({ pass, passes: RESIZE2FS_PASSES.length, name: RESIZE2FS_PASSES[pass - 1] ?? `pass ${pass}`, fraction: marks / RESIZE2FS_BAR_WIDTH });
    });
    const last = starts.at(-1);
    if (last) seen = seen.slice(last.index);
  };
}

/** diskwright's name for what a run of `tool` does, for messages (users see steps, not tools). */
export function toolStep(tool: string): string {
  switch (tool) {
    case 'e2fsck':
      return 'checking the filesystem';
    case 'resize2fs':
      return 'resizing the filesystem';
    case 'mke2fs':
      return 'making the filesystem';
    case 'tune2fs':
      return 'changing the filesystem settings';
    case 'dumpe2fs':
      return 'reading the filesystem header';
    case 'debugfs':
      return 'the bulk write';
    default:
      return 'the filesystem step';
  }
}
