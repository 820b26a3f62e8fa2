import { execa } from 'execa';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { workerExecArgv } from '../../../src/e2fs/pool.js';
import { requireTool } from '../../helpers/oracle.js';
import { tempDir } from '../../helpers/tmp.js';

const library = fileURLToPath(new URL('../../../dist/index.js', import.meta.url));
let image: string;

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  image = join(await tempDir('worker-flags-'), 'fs.img');
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', image, '64M'], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
});

describe('the WASM tool workers and node\'s own flags', () => {
  it('a library user\'s `node --input-type=module -e` runs the tools (workers used to inherit the flag and crash)', async () => {
    const script = `import { checkFilesystem } from ${JSON.stringify(library)}; const r = await checkFilesystem(${JSON.stringify(image)}, { mode: 'check' }); console.log(r.status);`;
    for (const flags of [['--input-type=module'], ['--input-type', 'module']]) {
      const run = await execa(process.execPath, [...flags, '-e', script], { reject: false });
      expect(run.stderr).toBe('');
      expect(run.stdout).toBe('clean');
    }
  }, 60_000);

  it('keeps every other flag', () => {
    expect(workerExecArgv(['--max-old-space-size=512', '--input-type=module', '--input-type', 'commonjs', '--enable-source-maps'])).toEqual(['--max-old-space-size=512', '--enable-source-maps']);
  });
});
