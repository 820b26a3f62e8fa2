import type { CommandContext } from './command.js';
import { formatBytes } from '../bytes/size.js';
import type { FillProgress } from '../build/fill.js';

const TTY_INTERVAL_MS = 200;
const JSON_INTERVAL_MS = 1000;

/**
 * Files and bytes of a `--from` fill: a redrawn line on a terminal, JSON lines on stderr with
 * --json (the final figures always), nothing otherwise.
 */
export function fillReporter(ctx: CommandContext, step = 'fill'): { update: (p: FillProgress) => void; done: () => void } {
  let last = Number.NEGATIVE_INFINITY;
  let pending: FillProgress | undefined;
  let drew = false;
  let finished = false;
  const draw = (p: FillProgress): void => {
    pending = undefined;
    last = performance.now();
    if (ctx.json) {
      ctx.stderr.write(`${JSON.stringify({ event: 'progress', step, files: p.files, totalFiles: p.totalFiles ?? null, bytes: p.bytes, total: p.totalBytes ?? null })}\n`);
    } else if (ctx.isTTY) {
      const files = p.totalFiles !== undefined ? `${p.files}/${p.totalFiles} files` : `${p.files} files`;
      const bytes = p.totalBytes !== undefined ? `${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}` : formatBytes(p.bytes);
      const pct = p.totalBytes ? ` ${Math.min(100, Math.floor((p.bytes / p.totalBytes) * 100))}%` : '';
      ctx.stderr.write(`\r\x1b[2K${step}: ${files}, ${bytes}${pct}`);
      drew = true;
    }
  };
  return {
    update(p) {
      if (finished) return;
      if (performance.now() - last < (ctx.isTTY ? TTY_INTERVAL_MS : JSON_INTERVAL_MS)) pending = p;
      else draw(p);
    },
    done() {
      if (finished) return;
      if (ctx.json && pending) draw(pending);
      finished = true;
      if (drew) ctx.stderr.write('\r\x1b[2K');
    },
  };
}
