import { describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.js';
import { templateOperations } from '../../src/template/index.js';

describe('diskwright template (CLI)', () => {
  it('lists every operation with its description', async () => {
    const result = await runInProcess(['template', 'ops']);
    expect(result.code).toBe(0);
    for (const op of templateOperations) expect(result.stdout).toContain(op.name);
    expect(result.stdout.split('\n').filter(Boolean)).toHaveLength(templateOperations.length);
  });

  it('lists the operations as JSON', async () => {
    const result = await runInProcess(['template', 'ops', '--json']);
    expect(JSON.parse(result.stdout)).toEqual(templateOperations);
  });

  it('has help with a usage line and an example on each command', async () => {
    for (const command of [['template', 'make'], ['template', 'ops'], ['template', 'show'], ['kernel']]) {
      const result = await runInProcess([...command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: diskwright /);
      expect(result.stdout).toMatch(/Example/);
    }
  });

  it('rejects an unknown operation name before reading the disk', async () => {
    const result = await runInProcess(['template', 'make', '/nonexistent.img', '--partition', '1', '-o', '/tmp/x-never', '--ops', 'hostname,bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown operation `bogus`.*E_INVALID_ARGUMENT/);
    expect(result.stderr).toMatch(/hint: the operations are: udev-persistent-net/);
  });

  it('rejects an -O that is not raw or qcow2 before reading the disk', async () => {
    const result = await runInProcess(['template', 'make', '/nonexistent.img', '--partition', '1', '-o', '/tmp/x-never', '-O', 'vmdk']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Expected `--output-format` to be raw or qcow2, got `vmdk`/);
  });

  it('requires --partition and -o, and rejects a non-numeric partition', async () => {
    expect((await runInProcess(['template', 'make', 'disk.img', '-o', 't'])).stderr).toMatch(/--partition N is required/);
    expect((await runInProcess(['template', 'make', 'disk.img', '--partition', '1'])).stderr).toMatch(/-o TEMPLATE is required/);
    const bad = await runInProcess(['template', 'make', 'disk.img', '--partition', '1;reboot', '-o', 't']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/partition number, got `1;reboot`/);
  });

  it('says a template without manifest has none, in one line', async () => {
    const result = await runInProcess(['template', 'show', '/nonexistent-template']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^diskwright: \/nonexistent-template has no template manifest .*\[E_NOT_FOUND\]\n  hint: make the template/);
  });

  it('says when the directory of -o does not exist, before reading the disk', async () => {
    const result = await runInProcess(['template', 'make', '/nonexistent.img', '--partition', '1', '-o', '/nonexistent-dir/t']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^diskwright: directory \/nonexistent-dir for the template does not exist \[E_NOT_FOUND\]/);
  });

  it('requires -o for kernel', async () => {
    const result = await runInProcess(['kernel', 'img']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/-o DIR is required/);
  });
});
