import { afterAll, describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { copyFile, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { closeE2fsPool, runE2fsTool } from '../../src/e2fs/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { FAKE_TIME, FIXED_SEED, FIXED_UUID, host, sparseFile } from '../unit/e2fs/host.js';

await requireTool('dumpe2fs', 'e2fsprogs');

afterAll(async () => {
  await closeE2fsPool();
});

const env = { E2FSPROGS_FAKE_TIME: String(FAKE_TIME), E2FSCK_TIME: String(FAKE_TIME) };
const memoryDisks = fileURLToPath(new URL('../unit/e2fs/hooks/memory-disks.mjs', import.meta.url));
/** The WASM libc has no passwd database ("user unknown" for uid 0). */
const owners = (text: string) => text.replace(/^(Reserved blocks [ug]id:\s+\d+) \((user|group) \w+\)$/gm, '$1');
const MKFS = ['-F', '-q', '-t', 'ext4', '-O', 'mmp', '-E', `mmp_update_interval=1,hash_seed=${FIXED_SEED}`, '-U', FIXED_UUID];

/** The MMP block number (1 KiB blocks on these small images), if the feature is on. */
async function mmpBlock(image: string): Promise<number | undefined> {
  const match = /^MMP block number:\s+(\d+)$/m.exec((await host('dumpe2fs', ['-h', image])).stdout);
  return match ? Number(match[1]) : undefined;
}

describe('MMP (multi-mount protection)', () => {
  it('mke2fs -O mmp, e2fsck -fn and dumpe2fs give host e2fsprogs’ bytes and output', async () => {
    const dir = await tempDir();
    const ours = join(dir, 'ours.img');
    const theirs = join(dir, 'theirs.img');
    await sparseFile(ours, 32 << 20);
    await copyFile(ours, theirs);
    expect((await runE2fsTool('mke2fs', [...MKFS, ours], { env })).exitCode).toBe(0);
    expect((await host('mke2fs', [...MKFS, theirs])).exitCode).toBe(0);
    // mke2fs stamps the MMP block with the wall clock (E2FSPROGS_FAKE_TIME does not reach it), so two
    // runs a second apart differ in mmp_time and the block's checksum only: compare those apart.
    const block = await mmpBlock(theirs);
    expect(block).toBeDefined();
    const [a, b] = [await readFile(ours), await readFile(theirs)];
    const at = block! * 1024;
    const time = (image: Buffer) => Number(image.readBigUInt64LE(at + 8));
    expect(Math.abs(time(a) - time(b))).toBeLessThanOrEqual(60);
    for (const image of [a, b]) {
      image.fill(0, at + 8, at + 16);
      image.fill(0, at + 1020, at + 1024);
    }
    expect(Buffer.compare(a, b)).toBe(0);

    const dump = await runE2fsTool('dumpe2fs', [theirs], { env });
    expect(dump.exitCode).toBe(0);
    expect(dump.stdout).toMatch(/^MMP block number:\s+\d+$/m);
    expect(owners(dump.stdout)).toBe(owners((await host('dumpe2fs', [theirs])).stdout));

    const fsck = await runE2fsTool('e2fsck', ['-fn', theirs], { env });
    const hostFsck = await host('e2fsck', ['-fn', theirs]);
    expect(fsck.exitCode).toBe(0);
    expect(fsck.stdout).toBe(hostFsck.stdout);
  });

  // The two slow tests (MMP sleeps 11 s) run side by side.
  it.concurrent('tune2fs turns MMP off and on as host tune2fs does', async () => {
    const dir = await tempDir();
    const ours = join(dir, 'ours.img');
    const theirs = join(dir, 'theirs.img');
    await sparseFile(ours, 16 << 20);
    expect((await host('mke2fs', [...MKFS, ours])).exitCode).toBe(0);
    await copyFile(ours, theirs);
    // The MMP block holds the wall-clock time and a random sequence: host runs differ there too.
    const mmpBlocks: number[] = [];
    const first = await mmpBlock(ours);
    if (first !== undefined) mmpBlocks.push(first);
    for (const args of [['-O', '^mmp'], ['-O', 'mmp', '-E', 'mmp_update_interval=1']]) {
      // Side by side: clearing mmp sleeps 2 * 5 + 1 s in each.
      const [ourRun, hostRun] = await Promise.all([runE2fsTool('tune2fs', [...args, ours], { env }), host('tune2fs', [...args, theirs])]);
      expect(ourRun.exitCode, args.join(' ')).toBe(hostRun.exitCode);
      expect(ourRun.exitCode, args.join(' ')).toBe(0);
      const block = await mmpBlock(ours);
      if (block !== undefined) mmpBlocks.push(block);
      const [a, b] = [await readFile(ours), await readFile(theirs)];
      for (const n of mmpBlocks) {
        a.fill(0, n * 1024, (n + 1) * 1024);
        b.fill(0, n * 1024, (n + 1) * 1024);
      }
      expect(Buffer.compare(a, b), args.join(' ')).toBe(0);
    }
    expect((await host('dumpe2fs', ['-h', ours])).stdout).toMatch(/^MMP update interval:\s+1$/m);
  });

  it.concurrent('e2fsck -fy through a Disk takes MMP (second fd, O_DIRECT, sleep without burning a core, host name)', async () => {
    const dir = await tempDir();
    const image = join(dir, 'image.img');
    const after = join(dir, 'after.img');
    const path = join(dir, 'served.img');
    await sparseFile(image, 16 << 20);
    expect((await host('mke2fs', [...MKFS, image])).exitCode).toBe(0);
    const cpu = process.cpuUsage();
    const started = Date.now();
    const fsck = await runE2fsTool('e2fsck', ['-fy', path], {
      env,
      diskFactory: { module: memoryDisks, args: { disks: [{ path, seedFrom: image, saveTo: after }] } },
    });
    const wall = Date.now() - started;
    const used = process.cpuUsage(cpu);
    expect(fsck.exitCode).toBe(0);
    // ext2fs_mmp_start sleeps 2 * mmp_check_interval + 1 (the minimum interval is 5 s).
    expect(wall).toBeGreaterThanOrEqual(11_000);
    expect((used.user + used.system) / 1000).toBeLessThan(wall / 2);
    const dump = await host('dumpe2fs', [after]);
    expect(dump.stdout).toContain(`mmp_node_name: ${hostname()}`);
    expect(dump.stdout).toContain(`mmp_device_name: ${path.slice(0, 32)}`); // a 32-byte field
    expect((await host('e2fsck', ['-fn', after])).exitCode).toBe(0);
  });
});
