import type { CommandContext } from './command.js';
import { formatBytes } from '../bytes/size.js';
import type { Progress } from '../io/progress.js';
import type { PassProgress } from '../e2fs/progress.js';

export interface ProgressReporter {
  update(progress: Progress): void;
  /** Ends the bar (clears the TTY line); idempotent. */
  done(): void;
}

const BAR_WIDTH = 24;
const TTY_INTERVAL_MS = 100;
const JSON_INTERVAL_MS = 1000;
/** Non-terminal stderr: a step gets its lines only once it has run this long (quick runs stay quiet). */
const LOG_AFTER_MS = 1000;

type SignalContext = Pick<CommandContext, 'signal'>;

/** What an interrupt reports: the step that was running and what the command leaves behind. */
export interface Activity {
  step: string | undefined;
  /** `disk.img unchanged`, `no out.img written` — in the order the command said them. */
  readonly leaves: string[];
}

// Keyed by the run's AbortSignal: the one object runCli and the command's context share.
const activities = new WeakMap<AbortSignal, Activity>();

function activityOf(signal: AbortSignal): Activity {
  let activity = activities.get(signal);
  if (!activity) {
    activity = { step: undefined, leaves: [] };
    activities.set(signal, activity);
  }
  return activity;
}

/** Records the step now running (named in "interrupted during STEP"); undefined: between steps. */
export function noteStep(ctx: SignalContext, step: string | undefined): void {
  activityOf(ctx.signal).step = step;
}

/** Records what an interrupt leaves (`IMAGE unchanged`, `no OUTPUT written`); said once each. */
export function noteLeaves(ctx: SignalContext, text: string): void {
  const { leaves } = activityOf(ctx.signal);
  if (!leaves.includes(text)) leaves.push(text);
}

/** The step and leftovers recorded for this run's signal, if any. */
export function activityFor(signal: AbortSignal): Activity | undefined {
  return activities.get(signal);
}

/** The one line an interrupted command prints: `fsck interrupted during pass 2 (…); disk.img unchanged`. */
export function interruptedMessage(command: string, activity: Activity | undefined): string {
  const during = activity?.step === undefined ? '' : ` during ${activity.step}`;
  const leaves = activity && activity.leaves.length > 0 ? `; ${activity.leaves.join(', ')}` : '';
  return `${command} interrupted${during}${leaves}`;
}

function rate(bytes: number, seconds: number): string {
  return `${formatBytes(seconds > 0 ? bytes / seconds : 0)}/s`;
}

/** `12.3 s` / `4 min 05 s` for elapsed times. */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(Math.round(seconds - minutes * 60)).padStart(2, '0')} s`;
}

/**
 * A progress display for one labelled step: a redrawn bar with files (when counted), bytes, rate,
 * elapsed time and ETA on a TTY, JSON lines on stderr with `--json`, nothing otherwise. From its
 * creation to `done()` the label is the running step (for the interrupt message).
 */
export function createProgress(ctx: CommandContext, label: string): ProgressReporter & { last(): Progress | undefined; seconds(): number } {
  const started = performance.now();
  let last = Number.NEGATIVE_INFINITY;
  let finished = false;
  let drew = false;
  let latest: Progress | undefined;
  /** The newest progress not yet shown (JSON consumers always get the final figures). */
  let pending: Progress | undefined;
  let lastKey = '';
  noteStep(ctx, label);
  const draw = (p: Progress, force: boolean): void => {
    const now = performance.now();
    if (!force && now - last < (ctx.isTTY ? TTY_INTERVAL_MS : JSON_INTERVAL_MS)) {
      pending = p;
      return;
    }
    pending = undefined;
    // JSON consumers get each figure once (the final one is often reported by two layers).
    const key = `${p.bytes}/${p.total ?? ''}/${p.files ?? ''}/${p.totalFiles ?? ''}`;
    if (ctx.json && key === lastKey) return;
    lastKey = key;
    last = now;
    const elapsed = (now - started) / 1000;
    const speed = p.speed ?? (elapsed > 0 ? p.bytes / elapsed : 0);
    if (ctx.json) {
      const files = p.files === undefined ? {} : { files: p.files, totalFiles: p.totalFiles ?? null };
      ctx.stderr.write(`${JSON.stringify({ event: 'progress', step: label, ...files, bytes: p.bytes, total: p.total ?? null, speed: Math.round(speed), seconds: Math.round(elapsed * 10) / 10 })}\n`);
    } else if (ctx.isTTY) {
      const fraction = p.total ? Math.min(1, p.bytes / p.total) : 0;
      const filled = Math.round(fraction * BAR_WIDTH);
      const eta = p.total && speed > 0 ? Math.max(0, (p.total - p.bytes) / speed) : undefined;
      const bar = p.total ? ` [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%` : '';
      const files = p.files === undefined ? '' : ` ${p.files}${p.totalFiles === undefined ? '' : `/${p.totalFiles}`} files,`;
      const amount = p.total ? `${formatBytes(p.bytes)}/${formatBytes(p.total)}` : formatBytes(p.bytes);
      const etaText = eta === undefined ? '' : ` ETA ${eta < 1 ? '<1' : Math.round(eta)}s`;
      ctx.stderr.write(`\r\x1b[2K${label}${bar}${files} ${amount} ${formatBytes(speed)}/s ${formatSeconds(elapsed)}${etaText}`);
      drew = true;
    }
  };
  return {
    update: (p) => {
      if (finished) return;
      latest = p;
      draw(p, false);
    },
    done: () => {
      if (finished) return;
      // Interrupted: the error line (already written, errors.ts reportAbort) is the last word.
      if (ctx.json && pending && !ctx.signal.aborted) draw(pending, true);
      finished = true;
      // Ended by an interrupt: the step stays named for the message.
      if (!ctx.signal.aborted && activityOf(ctx.signal).step === label) noteStep(ctx, undefined);
      if (drew) ctx.stderr.write('\r\x1b[2K');
    },
    last: () => latest,
    seconds: () => (performance.now() - started) / 1000,
  };
}

/**
 * The closing figures of a copy: `1234 files, 40.0 MiB in 2.8 s (14.3 MiB/s)`; the caller prints
 * them in its summary line.
 */
export function closingFigures(figures: { files?: number; bytes: number }, seconds: number): string {
  const files = figures.files === undefined ? '' : `${figures.files} file${figures.files === 1 ? '' : 's'}, `;
  return `${files}${formatBytes(figures.bytes)} in ${formatSeconds(seconds)} (${rate(figures.bytes, seconds)})`;
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
 * name (redrawn in place) and one line per finished step with its time; on other stderr (a log)
 * no redrawing: a step that runs longer than a second gets a line when it starts and when it ends.
 * Every start marks the step as running for the interrupt message.
 */
export function createStepReporter(ctx: CommandContext, options: { readonly quiet?: boolean } = {}): (event: StepEvent) => void {
  const track = (event: StepEvent): void => {
    const name = event.host === undefined ? event.step : `${event.step} of ${event.host}`;
    if (event.phase === 'start') noteStep(ctx, name);
    else if (activityOf(ctx.signal).step === name) noteStep(ctx, undefined);
  };
  // Quiet: the tool's own lines already name the steps (a bar may still show progress); only track them.
  if (options.quiet && !ctx.json) return track;
  if (ctx.json) {
    return (event) => {
      track(event);
      ctx.stderr.write(`${JSON.stringify({ event: 'step', ...event, ...(event.seconds === undefined ? {} : { seconds: Math.round(event.seconds * 1000) / 1000 }) })}\n`);
    };
  }
  const who = (event: StepEvent): string => (event.host === undefined ? '' : `${event.host}: `);
  const doneLine = (event: StepEvent): string => `${who(event)}${event.step} done${event.seconds === undefined ? '' : ` (${formatSeconds(event.seconds)})`}${event.note ? `: ${event.note}` : ''}\n`;
  if (ctx.isTTY) {
    return (event) => {
      track(event);
      if (event.phase === 'start') ctx.stderr.write(`\r\x1b[2K${who(event)}${event.step}…`);
      else ctx.stderr.write(`\r\x1b[2K${doneLine(event)}`);
    };
  }
  const timers = new Map<string, { timer: NodeJS.Timeout; logged: boolean; started: number }>();
  return (event) => {
    track(event);
    const key = `${event.host ?? ''}\0${event.step}`;
    if (event.phase === 'start') {
      const entry = { logged: false, started: performance.now(), timer: setTimeout(() => {
        entry.logged = true;
        ctx.stderr.write(`${who(event)}${event.step}…\n`);
      }, LOG_AFTER_MS) };
      entry.timer.unref();
      const previous = timers.get(key);
      if (previous) clearTimeout(previous.timer);
      timers.set(key, entry);
      return;
    }
    const entry = timers.get(key);
    timers.delete(key);
    if (entry) clearTimeout(entry.timer);
    // A synchronous step (a commit) blocks the timer: its duration still earns it the line.
    const long = entry !== undefined && (entry.logged || performance.now() - entry.started >= LOG_AFTER_MS);
    if (long || event.note) ctx.stderr.write(doneLine(event));
  };
}

/** Runs `fn` as the named step of `report`: start and done events around it (done only on success). */
export async function runStep<T>(report: (event: StepEvent) => void, step: string, fn: () => Promise<T>): Promise<T> {
  report({ step, phase: 'start' });
  const started = performance.now();
  const value = await fn();
  report({ step, phase: 'done', seconds: (performance.now() - started) / 1000 });
  return value;
}

/**
 * Reports the passes of e2fsck or resize2fs (`what`: `fsck`, `resize`): each pass is a step
 * (`pass 2 (checking directory structure)`) with a redrawn bar on a terminal, and `progress`
 * events with `pass`, `passes` and `fraction` under `--json` (at most once a second per pass).
 * Returns the callback and `done()`, which ends the last pass.
 */
export function createPassReporter(ctx: CommandContext, report: (event: StepEvent) => void = createStepReporter(ctx)): { onPass: (p: PassProgress) => void; done: () => void } {
  let current: { pass: number; step: string; started: number } | undefined;
  let lastDraw = Number.NEGATIVE_INFINITY;
  let lastFraction = -1;
  const finish = (): void => {
    if (!current) return;
    report({ step: current.step, phase: 'done', seconds: (performance.now() - current.started) / 1000 });
    current = undefined;
  };
  return {
    onPass: (p) => {
      if (current?.pass !== p.pass) {
        finish();
        current = { pass: p.pass, step: `pass ${p.pass} (${p.name})`, started: performance.now() };
        lastDraw = Number.NEGATIVE_INFINITY;
        lastFraction = -1;
        report({ step: current.step, phase: 'start' });
      }
      const now = performance.now();
      const final = p.fraction >= 1 && lastFraction < 1;
      if (!final && now - lastDraw < (ctx.isTTY ? TTY_INTERVAL_MS : JSON_INTERVAL_MS)) return;
      if (p.fraction === lastFraction) return;
      lastDraw = now;
      lastFraction = p.fraction;
      if (ctx.json) {
        ctx.stderr.write(`${JSON.stringify({ event: 'progress', step: current.step, pass: p.pass, passes: p.passes, fraction: Math.round(p.fraction * 1000) / 1000 })}\n`);
      } else if (ctx.isTTY) {
        const filled = Math.round(p.fraction * BAR_WIDTH);
        ctx.stderr.write(`\r\x1b[2K${current.step} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(p.fraction * 100).toFixed(0).padStart(3)}% ${formatSeconds((now - current.started) / 1000)}`);
      }
    },
    done: finish,
  };
}
