import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastCommit } from '../../../src/ext/with-filesystem.js';
import { undoLogPath, withFilesystem } from '../../../src/ext/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { hostCat, hostFsck, makeExtImage, sha256 } from './ext-images.js';

describe('scratch write sessions (private temp images)', () => {
  it.each(['ext3', 'ext4'] as const)('commit %s changes straight into the image without an undo log, e2fsck-clean', async (type) => {
    const dir = await tempDir();
    const image = join(dir, `scratch.${type}`);
    await makeExtImage(image, type, '32M');
    await withFilesystem(image, { write: true, scratch: true }, async (fs) => {
      await fs.writeFile('/etc-hostname', 'web01.linux.bogus\n', { mode: 0o644 });
      expect(existsSync(undoLogPath(image))).toBe(false);
    });
    expect(lastCommit?.undoBytes).toBe(0);
    expect(existsSync(undoLogPath(image))).toBe(false);
    expect((await hostCat(image, '/etc-hostname')).toString()).toBe('web01.linux.bogus\n');
    expect((await hostFsck(image)).exitCode).toBe(0);
  });

  it('write nothing when the callback fails', async () => {
    const dir = await tempDir();
    const image = join(dir, 'scratch-fail.ext4');
    await makeExtImage(image, 'ext4', '16M');
    const before = await sha256(image);
    await expect(
      withFilesystem(image, { write: true, scratch: true }, async (fs) => {
        await fs.writeFile('/x', 'x');
        throw new Error('step failed');
      }),
    ).rejects.toThrow('step failed');
    expect(await sha256(image)).toBe(before);
  });
});
