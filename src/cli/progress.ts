import type { CommandContext } from './command.js';
import { formatBytes } from '../bytes/size.js';
import type { Progress } from '../io/progress.js';

export interface ProgressReporter {
  update(progress: Progress): void;
  /** Ends the bar (clears the TTY line); idempotent. */
  done(): void;
}

const BAR_WIDTH = 24;
const TTY_INTERVAL_MS = 100;
const JSON_INTERVAL_MS = 1000;

/**
 * A progress display for one labelled step: a redrawn bar with bytes, rate and ETA on a TTY,
 * JSON lines on stderr with `--json`, nothing otherwise.
 */
export function createProgress(ctx: CommandContext, label: string): ProgressReporter {
  const started = performance.now();
  let last = Number.NEGATIVE_INFINITY;
  let finished = false;
  let drew = false;
  /** The newest progress not yet shown (JSON consumers always get the final figures). */
  let pending: Progress | undefined;
  let lastBytes = -1;
  let lastTotal: number | null = null;
  const draw = (p: Progress, force: boolean): void => {
    const now = performance.now();
    if (!force && now - last < (ctx.isTTY ? TTY_INTERVAL_MS : JSON_INTERVAL_MS)) {
      pending = p;
      return;
    }
    pending = undefined;
    // JSON consumers get each figure once (the final one is often reported by two layers).
    if (ctx.json && p.bytes === lastBytes && (p.total ?? null) === lastTotal) return;
    lastBytes = p.bytes;
    lastTotal = p.total ?? null;
    last = now;
    const elapsed = (now - started) / 1000;
    const speed = p.speed ?? (elapsed > 0 ? p.bytes / elapsed : 0);
    if (ctx.json) {
      ctx.stderr.write(`${JSON.stringify({ event: 'progress', step: label, bytes: p.bytes, total: p.total ?? null, speed: Math.round(speed) })}\n`);
    } else if (ctx.isTTY) {
      const fraction = p.total ? Math.min(1, p.bytes / p.total) : 0;
      const filled = Math.round(fraction * BAR_WIDTH);
      const eta = p.total && speed > 0 ? Math.max(0, (p.total - p.bytes) / speed) : undefined;
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
      const pct = p.total ? `${(fraction * 100).toFixed(0).padStart(3)}%` : '';
      const amount = p.total ? `${formatBytes(p.bytes)}/${formatBytes(p.total)}` : formatBytes(p.bytes);
      const etaText = eta === undefined ? '' : ` ETA ${eta < 1 ? '<1' : Math.round(eta)}s`;
      ctx.stderr.write(`\r\x1b[2K${label} ${bar} ${pct} ${amount} ${formatBytes(speed)}/s${etaText}`);
      drew = true;
    }
  };
  return {
    update: (p) => {
      if (!finished) draw(p, false);
    },
    done: () => {
      if (finished) return;
      if (ctx.json && pending) draw(pending, true);
      finished = true;
      if (drew) ctx.stderr.write('\r\x1b[2K');
    },
  };
}

/** One step of a multi-step command starting or finishing (instance create, template make, …). */
export interface StepEvent {
  readonly step: string;
  readonly phase: 'start' | 'done';
  readonly seconds?: number;
  /** Which item the step belongs to (the host of a fleet). */
  readonly host?: string;
  readonly note?: string;
}

/**
 * Reports named steps: `{"event":"step",…}` lines with `--json`; on a terminal the running step's
 * name (redrawn in place) and one line per finished step with its time; nothing otherwise.
 */
export function createStepReporter(ctx: CommandContext): ((event: StepEvent) => void) | undefined {
  if (ctx.json) return (event) => ctx.stderr.write(`${JSON.stringify({ event: 'step', ...event })}\n`);
  if (!ctx.isTTY) return undefined;
  return (event) => {
    const who = event.host === undefined ? '' : `${event.host}: `;
    if (event.phase === 'start') ctx.stderr.write(`\r\x1b[2K${who}${event.step}…`);
    else ctx.stderr.write(`\r\x1b[2K${who}${event.step} done${event.seconds === undefined ? '' : ` (${event.seconds.toFixed(1)} s)`}${event.note ? `: ${event.note}` : ''}\n`);
  };
}
