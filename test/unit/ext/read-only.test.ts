import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { undoLogPath, withFilesystem } from '../../../src/ext/index.js';
import { ext2fsModule, resetExt2fsModule } from '../../../src/ext/module.js';
import { tempDir } from '../../helpers/tmp.js';
import { makeExtImage, sha256 } from './ext-images.js';

describe('read-only sessions', () => {
  it('refuse an image with a pending undo log instead of rolling it back (a read never writes)', async () => {
    const dir = await tempDir();
    const image = join(dir, 'tmpl.img');
    await makeExtImage(image, 'ext4', '16M');
    await copyFile(image, `${image}.orig`);
    await writeFile(undoLogPath(image), 'not a real undo log');
    const before = await sha256(image);
    await expect(withFilesystem(image, {}, async (fs) => fs.readdir('/'))).rejects.toMatchObject({ code: 'E_NEEDS_RECOVERY' });
    expect(await sha256(image)).toBe(before);
  });

  it('leave no process-wide error handlers from the ext2fs package behind', () => {
    resetExt2fsModule();
    const before = [process.listeners('uncaughtException').length, process.listeners('unhandledRejection').length];
    ext2fsModule();
    expect([process.listeners('uncaughtException').length, process.listeners('unhandledRejection').length]).toEqual(before);
  });
});
