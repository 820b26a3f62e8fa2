import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../../src/cli/command.js';
import { createStepReporter } from '../../../src/cli/progress.js';

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

  it('emits JSON step events with --json and stays silent when stderr is not a terminal', () => {
    const json = context({ json: true, isTTY: false });
    createStepReporter(json.ctx)!({ host: 'web1', step: 'check', phase: 'done', seconds: 2 });
    expect(JSON.parse(json.text())).toEqual({ event: 'step', host: 'web1', step: 'check', phase: 'done', seconds: 2 });
    expect(createStepReporter(context({ json: false, isTTY: false }).ctx)).toBeUndefined();
  });
});
