import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../helpers/tmp.js';

const dir = await tempDir('qcow2-scratch-');
const qcow2Module = pathToFileURL(join(process.cwd(), 'dist/disk/qcow2/index.js')).href;

/**
 * Creates a qcow2 (64 KiB clusters, 64 MiB), writes into three L2 ranges and closes it, in a
 * child process under strace; returns how many fsync/fdatasync calls the child made.
 */
async function syncsWhileBuilding(name: string, scratch: boolean): Promise<{ path: string; syncs: number }> {
  const path = join(dir, `${name}.qcow2`);
  const log = join(dir, `${name}.strace`);
  const script = `
    const { createQcow2, Qcow2Disk } = await import(${JSON.stringify(qcow2Module)});
    const path = ${JSON.stringify(path)};
    const scratch = ${scratch ? '{ scratch: true }' : '{}'};
    createQcow2(path, { size: 64 << 20, ...scratch });
    const disk = Qcow2Disk.open(path, { readOnly: false, ...scratch });
    for (const at of [0, 20 << 20, 50 << 20]) disk.write(new Uint8Array(70000).fill(at % 251 + 1), at + 512);
    disk.flush();
    disk.write(new Uint8Array(4096).fill(9), 30 << 20);
    disk.close();`;
  await execa('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync', '-o', log, process.execPath, '--input-type=module', '-e', script]);
  const syncs = readFileSync(log, 'utf8').split('\n').filter((line) => /\b(fsync|fdatasync)\(/.test(line)).length;
  return { path, syncs };
}

describe('qcow2 scratch images (a private temp file fsynced once by its owner before the rename)', () => {
  it('are built without a single fsync, while an ordinary image keeps its ordering barriers', async () => {
    const scratch = await syncsWhileBuilding('scratch', true);
    const ordinary = await syncsWhileBuilding('ordinary', false);
    expect(scratch.syncs).toBe(0);
    expect(ordinary.syncs).toBeGreaterThanOrEqual(4);
  });

  it('hold the same clean image as one built with barriers (qemu-img check and compare)', async () => {
    const scratch = join(dir, 'scratch.qcow2');
    const ordinary = join(dir, 'ordinary.qcow2');
    for (const image of [scratch, ordinary]) {
      expect((await execa('qemu-img', ['check', '-q', '-f', 'qcow2', image], { reject: false })).exitCode).toBe(0);
    }
    expect((await execa('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'qcow2', scratch, ordinary], { reject: false })).exitCode).toBe(0);
    expect(readFileSync(scratch).equals(readFileSync(ordinary))).toBe(true);
  });
});
