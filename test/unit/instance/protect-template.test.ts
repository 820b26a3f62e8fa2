import { describe, expect, it } from 'vitest';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dependentsDir } from '../../../src/disk/dependents.js';
import { protectTemplate } from '../../../src/instance/thin.js';
import { tempDir } from '../../helpers/tmp.js';

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('protectTemplate', () => {
  it('makes the template read-only at once and gives the mode back when the create fails', async () => {
    const template = join(await tempDir(), 'tmpl');
    writeFileSync(template, 'x', { mode: 0o644 });
    const release = protectTemplate(template);
    expect(mode(template)).toBe(0o444);
    const ctime = statSync(template, { bigint: true }).ctimeNs;
    // A second protection of a read-only template changes nothing of its inode (no chmod).
    protectTemplate(template)(false);
    expect(statSync(template, { bigint: true }).ctimeNs).toBe(ctime);
    release(true);
    expect(mode(template)).toBe(0o644);
    expect(statSync(dependentsDir(template), { throwIfNoEntry: false })).toBeUndefined();
  });

  it('keeps the template read-only while another create of the process still builds over it', async () => {
    const template = join(await tempDir(), 'tmpl');
    writeFileSync(template, 'x', { mode: 0o640 });
    const first = protectTemplate(template);
    const second = protectTemplate(template);
    first(true);
    // The sibling recorded the read-only template's ctime: a chmod now would break its overlay.
    expect(mode(template)).toBe(0o440);
    second(true);
    expect(mode(template)).toBe(0o640);
  });

  it('leaves the template read-only when the create succeeded (its overlay depends on it)', async () => {
    const template = join(await tempDir(), 'tmpl');
    writeFileSync(template, 'x', { mode: 0o600 });
    protectTemplate(template)(false);
    expect(mode(template)).toBe(0o400);
  });
});
