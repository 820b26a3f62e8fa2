// Helpers shared by the e2fs oracle tests: host e2fsprogs runs with the same fixed inputs as ours.
import { execa } from 'execa';
import { copyFile, open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Fixed inputs that make e2fsprogs output reproducible. */
export const FAKE_TIME = 1_700_000_000;
export const FIXED_UUID = '0b9a5f4e-1c2d-4e3f-8a7b-6c5d4e3f2a1b';
export const FIXED_SEED = '5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6';

const wasmDist = fileURLToPath(new URL('../../../wasm/dist/', import.meta.url));

/** Environment for host tools: same config files and clock as the WebAssembly runs. */
export function hostEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`,
    MKE2FS_CONFIG: join(wasmDist, 'mke2fs.conf'),
    E2FSCK_CONFIG: join(wasmDist, 'e2fsck.conf'),
    E2FSPROGS_FAKE_TIME: String(FAKE_TIME),
    E2FSCK_TIME: String(FAKE_TIME),
    ...extra,
  };
}

/** Runs a host e2fsprogs tool; never rejects. */
export async function host(tool: string, args: readonly string[], extraEnv: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const result = await execa(tool, args, { reject: false, env: hostEnv(extraEnv), extendEnv: false, stdin: 'ignore', stripFinalNewline: false });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Creates a sparse file of `size` bytes. */
export async function sparseFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
}

/** Writes `bytes` at `offset` of `path`. */
export async function pokeBytes(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

/** Two copies of an image, one for the host tool and one for ours. */
export async function twinCopies(image: string, dir: string, name: string): Promise<[string, string]> {
  const a = join(dir, `${name}-host.img`);
  const b = join(dir, `${name}-wasm.img`);
  await copyFile(image, a);
  await copyFile(image, b);
  return [a, b];
}

/** Bytes actually allocated on disk for a file. */
export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** Parses "Name: value" lines of dumpe2fs -h. */
export function headerField(dump: string, name: string): string | undefined {
  const line = dump.split('\n').find((l) => l.startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}

/** A deterministic byte pattern (xorshift) for "garbage" corruption. */
export function garbage(length: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Builds a small source tree (dirs of files, a symlink) with fixed times for mke2fs -d. */
export async function makeTree(root: string, dirs = 8, filesPerDir = 12): Promise<void> {
  const { mkdir, writeFile, symlink, lutimes, utimes } = await import('node:fs/promises');
  await mkdir(root, { recursive: true });
  const paths: string[] = [root];
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `dir${d}`);
    await mkdir(dir);
    paths.push(dir);
    for (let f = 0; f < filesPerDir; f++) {
      const file = join(dir, `file${f}.txt`);
      await writeFile(file, `${'line of text '.repeat(f * 37 + d)}\n`);
      paths.push(file);
    }
  }
  await symlink('dir0/file1.txt', join(root, 'link'));
  // atime in the future: reading the tree (relatime) must not change what the next mke2fs -d sees.
  const atime = new Date(Date.now() + 3_600_000);
  const mtime = new Date('2020-01-02T03:04:05.123Z');
  await lutimes(join(root, 'link'), atime, mtime);
  for (const path of paths.reverse()) await utimes(path, atime, mtime);
}

/** A file capability, a POSIX ACL, an SELinux label and a user attribute (security.* needs root, as CI has). */
export async function setXattrs(path: string): Promise<void> {
  const { setAttributeSync } = await import('@napi-rs/xattr');
  setAttributeSync(path, 'user.comment', 'kept by mke2fs -d');
  // struct vfs_cap_data: VFS_CAP_REVISION_2 | effective, cap_net_bind_service (bit 10) permitted.
  const cap = Buffer.alloc(20);
  cap.writeUInt32LE(0x02000001, 0);
  cap.writeUInt32LE(1 << 10, 4);
  setAttributeSync(path, 'security.capability', cap);
  // POSIX ACL (xattr encoding v2): user::rwx user:1000:r-x group::r-x mask::r-x other::r--.
  const acl = Buffer.alloc(4 + 5 * 8);
  acl.writeUInt32LE(2, 0);
  [[0x01, 7, 0xffffffff], [0x02, 5, 1000], [0x04, 5, 0xffffffff], [0x10, 5, 0xffffffff], [0x20, 4, 0xffffffff]].forEach(([tag, perm, id], i) => {
    acl.writeUInt16LE(tag!, 4 + i * 8);
    acl.writeUInt16LE(perm!, 6 + i * 8);
    acl.writeUInt32LE(id!, 8 + i * 8);
  });
  setAttributeSync(path, 'system.posix_acl_access', acl);
  setAttributeSync(path, 'security.selinux', 'system_u:object_r:bin_t:s0\0');
}
