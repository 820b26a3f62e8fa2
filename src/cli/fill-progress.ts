import type { CommandContext } from './command.js';
import { formatBytes } from '../bytes/size.js';
import type { FillProgress } from '../build/fill.js';
import { formatSeconds, noteStep } from './progress.js';

const TTY_INTERVAL_MS = 200;
const JSON_INTERVAL_MS = 1000;

/** A fill's reporter: `update` takes the figures, `done` ends the line, `closing` is for the summary. */
export interface FillReporter {
  update: (p: FillProgress) => void;
  done: () => void;
  /** The final figures as the summary line prints them (`12 files, 1.0 MiB in 0.4 s`), or '' before any. */
  closing: () => string;
}

/**
 * Files and bytes of a `--from` fill: a redrawn line on a terminal (done/total, rate, elapsed),
 * JSON lines on stderr with --json (the final figures always), nothing otherwise. The first
 * figure marks `step` as running (for the interrupt message).
 */
export function fillReporter(ctx: CommandContext, step = 'fill'): FillReporter {
  const started = performance.now();
  let last = Number.NEGATIVE_INFINITY;
  let pending: FillProgress | undefined;
  let latest: FillProgress | undefined;
  let drew = false;
  let finished = false;
  let finishedAt: number | undefined;
  let lastKey = '';
  const draw = (p: FillProgress): void => {
    pending = undefined;
    // JSON consumers get each figure once (the last one is reported by the fill and by done()).
    const key = `${p.files}/${p.bytes}/${p.totalFiles ?? ''}/${p.totalBytes ?? ''}`;
    if (ctx.json && key === lastKey) return;
    lastKey = key;
    last = performance.now();
    const seconds = (last - started) / 1000;
    if (ctx.json) {
      ctx.stderr.write(`${JSON.stringify({ event: 'progress', step, files: p.files, totalFiles: p.totalFiles ?? null, bytes: p.bytes, total: p.totalBytes ?? null, speed: Math.round(seconds > 0 ? p.bytes / seconds : 0), seconds: Math.round(seconds * 10) / 10 })}\n`);
    } else if (ctx.isTTY) {
      const files = p.totalFiles !== undefined ? `${p.files}/${p.totalFiles} files` : `${p.files} files`;
      const bytes = p.totalBytes !== undefined ? `${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}` : formatBytes(p.bytes);
      const pct = p.totalBytes ? ` ${Math.min(100, Math.floor((p.bytes / p.totalBytes) * 100))}%` : '';
      ctx.stderr.write(`\r\x1b[2K${step}: ${files}, ${bytes}${pct} ${formatBytes(seconds > 0 ? p.bytes / seconds : 0)}/s ${formatSeconds(seconds)}`);
      drew = true;
    }
  };
  return {
    update(p) {
      if (finished) return;
      if (latest === undefined) noteStep(ctx, step);
      latest = p;
      if (performance.now() - last < (ctx.isTTY ? TTY_INTERVAL_MS : JSON_INTERVAL_MS)) pending = p;
      else draw(p);
    },
    done() {
      if (finished) return;
      if (ctx.json && pending) draw(pending);
      finished = true;
      finishedAt = performance.now();
      if (drew) ctx.stderr.write('\r\x1b[2K');
    },
    closing() {
      if (!latest) return '';
      const seconds = ((finishedAt ?? performance.now()) - started) / 1000;
      return `${latest.files} file${latest.files === 1 ? '' : 's'}, ${formatBytes(latest.bytes)} in ${formatSeconds(seconds)}`;
    },
  };
}
