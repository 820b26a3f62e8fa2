import { afterAll, describe, expect, it } from 'vitest';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { closeE2fsPool, runE2fsTool } from '../../src/e2fs/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { FAKE_TIME, FIXED_SEED, FIXED_UUID, host, makeTree, setXattrs, sparseFile } from '../unit/e2fs/host.js';

await requireTool('debugfs', 'e2fsprogs');

afterAll(async () => {
  await closeE2fsPool();
});

const env = { E2FSPROGS_FAKE_TIME: String(FAKE_TIME) };

describe('extended attributes in mke2fs -d', () => {
  it('keeps a capability, a POSIX ACL, an SELinux label and a user attribute: host debugfs ea_list and bytes agree with host mke2fs -d', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    await makeTree(src, 2, 3);
    await setXattrs(join(src, 'dir1', 'file2.txt'));
    await setXattrs(join(src, 'dir0'));
    await setXattrs(src); // the root directory's own xattrs (m_rootdir_acl)
    const ours = join(dir, 'ours.img');
    const theirs = join(dir, 'theirs.img');
    await sparseFile(ours, 32 << 20);
    await copyFile(ours, theirs);
    const args = ['-F', '-q', '-t', 'ext4', '-U', FIXED_UUID, '-E', `hash_seed=${FIXED_SEED},nodiscard`, '-d', src];
    const result = await runE2fsTool('mke2fs', [...args, ours], { env });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect((await host('mke2fs', [...args, theirs])).exitCode).toBe(0);
    for (const path of ['/', '/dir0', '/dir1/file2.txt']) {
      const list = await host('debugfs', ['-R', `ea_list ${path}`, ours]);
      expect(list.stdout, path).toBe((await host('debugfs', ['-R', `ea_list ${path}`, theirs])).stdout);
      expect(list.stdout, path).toContain('security.capability (20) = 01 00 00 02 00 04 00 00 ');
      expect(list.stdout, path).toContain('security.selinux (27) = "system_u:object_r:bin_t:s0\\000"');
      expect(list.stdout, path).toContain('system.posix_acl_access (28) = 01 00 00 00 01 00 07 00 02 00 05 00 e8 03 00 00 ');
      expect(list.stdout, path).toContain('user.comment (17) = "kept by mke2fs -d"');
    }
    expect(Buffer.compare(await readFile(ours), await readFile(theirs))).toBe(0);
  });

  it('copies no xattrs with -E no_copy_xattrs, as host mke2fs', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    await makeTree(src, 1, 1);
    await setXattrs(join(src, 'dir0', 'file0.txt'));
    const ours = join(dir, 'ours.img');
    await sparseFile(ours, 16 << 20);
    const result = await runE2fsTool('mke2fs', ['-F', '-q', '-t', 'ext4', '-E', 'no_copy_xattrs', '-d', src, ours], { env });
    expect(result.exitCode).toBe(0);
    expect((await host('debugfs', ['-R', 'ea_list /dir0/file0.txt', ours])).stdout).not.toContain('security.');
  });
});
