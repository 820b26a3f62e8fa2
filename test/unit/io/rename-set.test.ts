import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempPathBeside } from '../../../src/io/atomic.js';
import { commitRenames, completePendingRenames, hasPendingRenames, renamesRecordPath } from '../../../src/io/rename-set.js';
import { tempDir } from '../../helpers/tmp.js';

describe('rename sets (template + manifest appear together)', () => {
  it('renames every temp into place and leaves no record', async () => {
    const dir = await tempDir();
    const a = join(dir, 'tmpl');
    const b = join(dir, 'tmpl.diskwright.json');
    const [ta, tb] = [tempPathBeside(a), tempPathBeside(b)];
    writeFileSync(ta, 'template');
    writeFileSync(tb, 'manifest');
    commitRenames(a, [[ta, a], [tb, b]]);
    expect([readFileSync(a, 'utf8'), readFileSync(b, 'utf8')]).toEqual(['template', 'manifest']);
    expect([existsSync(ta), existsSync(tb), hasPendingRenames(a)]).toEqual([false, false, false]);
  });

  it('completes a set whose run died after its first rename (roll forward), and is idempotent', async () => {
    const dir = await tempDir();
    const a = join(dir, 'tmpl');
    const b = join(dir, 'tmpl.diskwright.json');
    const [ta, tb] = [tempPathBeside(a), tempPathBeside(b)];
    writeFileSync(a, 'new template'); // already renamed
    writeFileSync(tb, 'new manifest');
    writeFileSync(b, 'old manifest');
    writeFileSync(renamesRecordPath(a), JSON.stringify({ version: 1, renames: [[ta, a], [tb, b]] }));
    expect(completePendingRenames(a)).toBe(true);
    expect([readFileSync(a, 'utf8'), readFileSync(b, 'utf8')]).toEqual(['new template', 'new manifest']);
    expect(completePendingRenames(a)).toBe(false);
  });

  it('refuses a record naming a file that is not a temp beside its output, renaming nothing', async () => {
    const dir = await tempDir();
    const a = join(dir, 'tmpl');
    writeFileSync(join(dir, 'victim'), 'keep');
    for (const renames of [[[join(dir, 'victim'), a]], [[`${dir}/../x/.tmpl.diskwright-1.tmp`, a]], [['.tmpl.diskwright-1.tmp', 'tmpl']], 'nope']) {
      writeFileSync(renamesRecordPath(a), JSON.stringify({ version: 1, renames }));
      expect(() => completePendingRenames(a)).toThrow(/rename record .* is damaged/);
    }
    writeFileSync(renamesRecordPath(a), '{');
    expect(() => completePendingRenames(a)).toThrow(/damaged \(not JSON\)/);
    expect(readFileSync(join(dir, 'victim'), 'utf8')).toBe('keep');
    expect(existsSync(a)).toBe(false);
  });
});
