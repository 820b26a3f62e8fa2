import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';

/** PATH with the sbin directories where e2fsprogs lives on Debian. */
export const SBIN_ENV = { PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

/** Makes a sparse image holding a fresh filesystem made by host mke2fs (1.47). */
export async function makeExtImage(path: string, type: 'ext2' | 'ext3' | 'ext4', size = '64M', extra: string[] = []): Promise<void> {
  await execa('truncate', ['-s', size, path]);
  await execa('mke2fs', ['-q', '-F', '-t', type, ...extra, path], { env: SBIN_ENV });
}

/** Host `e2fsck -fn`: exit code and output. */
export async function hostFsck(image: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa('e2fsck', ['-fn', image], { env: SBIN_ENV, reject: false });
  return { exitCode: r.exitCode ?? -1, output: `${r.stdout}\n${r.stderr}` };
}

/** Host `debugfs -R "cat PATH"` as raw bytes. */
export async function hostCat(image: string, path: string): Promise<Buffer> {
  const r = await execa('debugfs', ['-R', `cat "${path}"`, image], { env: SBIN_ENV, encoding: 'buffer', reject: false, stripFinalNewline: false });
  return Buffer.from(r.stdout);
}

/** Host `debugfs -R "stat PATH"` parsed into the fields the tests compare. */
export async function hostStat(image: string, path: string): Promise<{ type: string; mode: number; uid: number; gid: number; size: number; mtime?: number; text: string }> {
  const r = await execa('debugfs', ['-R', `stat "${path}"`, image], { env: SBIN_ENV, reject: false });
  const text = r.stdout;
  const m = /Type: (\S+)\s+Mode:\s+(\d+)/.exec(text);
  const u = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(text);
  const s = /Size: (\d+)/.exec(text);
  const t = /mtime: 0x([0-9a-f]+)/.exec(text);
  if (!m || !u || !s) throw new Error(`debugfs stat ${path} failed: ${r.stderr || text}`);
  return { type: m[1]!, mode: parseInt(m[2]!, 8), uid: Number(u[1]), gid: Number(u[2]), size: Number(s[1]), ...(t ? { mtime: parseInt(t[1]!, 16) } : {}), text };
}

/** Host `debugfs -R "ls -p DIR"` names. */
export async function hostLs(image: string, dir: string): Promise<string[]> {
  const r = await execa('debugfs', ['-R', `ls -p "${dir}"`, image], { env: SBIN_ENV, reject: false });
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('/'))
    .map((l) => l.split('/')[5]!)
    .filter((n) => n !== '.' && n !== '..' && n !== '');
}

export async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}
