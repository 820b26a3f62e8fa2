import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import type { CommandContext } from '../../../src/cli/command.js';
import { activityFor, createStepReporter, interruptedMessage, noteLeaves } from '../../../src/cli/progress.js';

function context(options: { json: boolean; isTTY: boolean }): { ctx: CommandContext; text: () => string } {
  const stderr = new PassThrough();
  const chunks: Buffer[] = [];
  stderr.on('data', (c: Buffer) => chunks.push(c));
  const ctx: CommandContext = { stdout: new PassThrough(), stderr, debug: false, signal: new AbortController().signal, env: {}, ...options };
  return { ctx, text: () => Buffer.concat(chunks).toString() };
}

describe('step reporting', () => {
  it('names the running step on a terminal and prints each finished step with its time', () => {
    const { ctx, text } = context({ json: false, isTTY: true });
    const report = createStepReporter(ctx)!;
    report({ host: 'web1', step: 'resize', phase: 'start' });
    report({ host: 'web1', step: 'resize', phase: 'done', seconds: 1.25 });
    expect(text()).toBe('\r\x1b[2Kweb1: resize…\r\x1b[2Kweb1: resize done (1.3 s)\n');
  });

  it('emits JSON step events with --json', () => {
    const json = context({ json: true, isTTY: false });
    createStepReporter(json.ctx)({ host: 'web1', step: 'check', phase: 'done', seconds: 2 });
    expect(JSON.parse(json.text())).toEqual({ event: 'step', host: 'web1', step: 'check', phase: 'done', seconds: 2 });
  });

  it('writes no redrawing to a log: a step under a second prints nothing, a longer one a line when it starts and one when it ends', () => {
    vi.useFakeTimers();
    try {
      const { ctx, text } = context({ json: false, isTTY: false });
      const report = createStepReporter(ctx);
      report({ step: 'copy', phase: 'start' });
      vi.advanceTimersByTime(500);
      report({ step: 'copy', phase: 'done', seconds: 0.5 });
      expect(text()).toBe('');
      report({ step: 'resize', phase: 'start' });
      vi.advanceTimersByTime(1500);
      report({ step: 'resize', phase: 'done', seconds: 1.5 });
      expect(text()).toBe('resize…\nresize done (1.5 s)\n');
      expect(text()).not.toContain('\r');
    } finally {
      vi.useRealTimers();
    }
  });

  it('remembers the running step and what the command leaves, for the interrupt message', () => {
    const { ctx } = context({ json: false, isTTY: false });
    const report = createStepReporter(ctx);
    noteLeaves(ctx, 'disk.img unchanged');
    report({ step: 'resize', phase: 'start', host: 'web1' });
    expect(interruptedMessage('instance create', activityFor(ctx.signal))).toBe('instance create interrupted during resize of web1; disk.img unchanged');
    report({ step: 'resize', phase: 'done', host: 'web1', seconds: 1 });
    expect(interruptedMessage('instance create', activityFor(ctx.signal))).toBe('instance create interrupted; disk.img unchanged');
  });
});
