import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { encrypt } from 'unixcrypt';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import type { FilesystemSession } from '../ext/types.js';
import { lstatIfExists, readTextFile, replaceText, resolveInImage } from '../template/image-path.js';
import { findUnit } from '../template/operations/systemd.js';
import { joinLines, splitLines } from '../template/operations/types.js';

/**
 * Per-instance customization (virt-customize's --ssh-inject, --root-password, --timezone,
 * --firstboot): everything is read and checked while planning, before any disk work; the image
 * is changed in the pipeline's `customize` step, after rendering and before the final e2fsck.
 */

/** Largest authorized_keys input, password file and first-boot script read from the host. */
export const MAX_SSH_KEY_BYTES = 64 * 1024;
export const MAX_PASSWORD_FILE_BYTES = 4096;
export const MAX_FIRSTBOOT_BYTES = 1024 * 1024;
/** Bytes of the fresh random seed (what systemd-random-seed saves). */
export const RANDOM_SEED_BYTES = 512;

/** A user name as useradd(8) accepts it by default. */
export const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
/** A tz database name such as `Europe/Berlin` or `UTC` (no `..`, no leading slash). */
export const TIMEZONE = /^[A-Za-z0-9_+-]{1,32}(\/[A-Za-z0-9_+-]{1,32}){0,3}$/;
/** One OpenSSH public key line: options (optional), a key type, base64 data, a comment (sshd(8) AUTHORIZED_KEYS). */
const KEY_TYPES = 'ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\\.com|sk-ecdsa-sha2-nistp256@openssh\\.com';
const PUBLIC_KEY = new RegExp(`(^|\\s)(${KEY_TYPES}) [A-Za-z0-9+/]+={0,3}(\\s|$)`);

/** What a request asks for (host paths and names, validated as strings by the spec). */
export interface CustomizationRequest {
  readonly sshKeyFile?: string;
  readonly sshUser?: string;
  readonly rootPasswordFile?: string;
  readonly timezone?: string;
  readonly firstbootFile?: string;
}

/** What the template offers the customization (read from it while planning). */
export interface TemplateFacts {
  /** passwd(5) entry of the requested user. */
  readonly user?: { readonly name: string; readonly uid: number; readonly gid: number; readonly home: string };
  readonly timezoneExists?: boolean;
  readonly init: 'systemd' | 'sysvinit' | 'unknown';
  readonly hasShadowRoot: boolean;
}

/** The checked customization the `customize` step applies. The password is only its crypt hash. */
export interface Customization {
  readonly authorizedKeys?: { readonly user: string; readonly uid: number; readonly gid: number; readonly home: string; readonly keys: readonly string[] };
  readonly rootPasswordHash?: string;
  readonly timezone?: string;
  readonly firstboot?: { readonly script: string; readonly init: 'systemd' | 'sysvinit' };
}

async function readLimited(path: string, limit: number, option: string): Promise<string> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new DiskwrightError('E_NOT_FOUND', `${option} ${path} does not exist`, { path, cause: error });
  });
  if (!info.isFile()) throw new InvalidArgumentError(`${option} ${path} is not a regular file`, { path });
  if (info.size > limit) throw new InvalidArgumentError(`${option} ${path} is ${info.size} bytes, more than the ${limit} allowed`, { path, actual: info.size, expected: limit });
  return readFile(path, 'utf8');
}

/** The public key lines of an authorized_keys-style file; private keys and anything else are refused. */
export function parsePublicKeys(text: string, source: string): string[] {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new InvalidArgumentError(`--ssh-key ${source} is a private key`, { hint: 'pass the public key (the .pub file next to it)' });
  }
  const keys: string[] = [];
  for (const [index, raw] of splitLines(text).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!PUBLIC_KEY.test(line) || /[\u0000-\u001f\u007f]/.test(line)) {
      throw new InvalidArgumentError(`--ssh-key ${source} line ${index + 1} is not an OpenSSH public key`, { hint: 'expected lines such as `ssh-ed25519 AAAA… user@host`' });
    }
    keys.push(line);
  }
  if (keys.length === 0) throw new InvalidArgumentError(`--ssh-key ${source} holds no public key`);
  return keys;
}

/** The password in a file: its first line (a final newline is not part of it). */
export function passwordFromFile(text: string, source: string): string {
  const password = text.split('\n')[0]!.replace(/\r$/, '');
  if (password === '') throw new InvalidArgumentError(`--root-password-file ${source} is empty`, { hint: 'put the password on the first line' });
  if (/[\u0000]/.test(password)) throw new InvalidArgumentError(`--root-password-file ${source} contains a NUL byte`);
  return password;
}

/** SHA-512 crypt (`$6$`, what Debian's PAM and shadow use) with a fresh 16-character salt. */
export function hashPassword(password: string): string {
  const alphabet = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const salt = [...randomBytes(16)].map((b) => alphabet[b & 63]).join('');
  return encrypt(password, `$6$${salt}`);
}

/** True when the request asks for anything beyond the always-on random seed. */
export function wantsTemplateFacts(request: CustomizationRequest): boolean {
  return request.sshKeyFile !== undefined || request.timezone !== undefined || request.firstbootFile !== undefined || request.rootPasswordFile !== undefined;
}

/**
 * Reads and checks everything the customization needs: key, password and script files on the host,
 * the user, the zone and the init system in the template. Nothing is written.
 */
export async function prepareCustomization(request: CustomizationRequest, facts: TemplateFacts | undefined, template: string): Promise<Customization> {
  const out: { -readonly [K in keyof Customization]: Customization[K] } = {};
  if (request.sshKeyFile !== undefined) {
    const keys = parsePublicKeys(await readLimited(request.sshKeyFile, MAX_SSH_KEY_BYTES, '--ssh-key'), request.sshKeyFile);
    const user = facts?.user;
    if (!user) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `user ${request.sshUser ?? 'root'} does not exist in template ${template} (/etc/passwd)`, {
        hint: 'pass --ssh-user with a user of the image, or create the user in the base system',
      });
    }
    out.authorizedKeys = { ...user, user: user.name, keys };
  }
  if (request.rootPasswordFile !== undefined) {
    const password = passwordFromFile(await readLimited(request.rootPasswordFile, MAX_PASSWORD_FILE_BYTES, '--root-password-file'), request.rootPasswordFile);
    if (!facts?.hasShadowRoot) throw new DiskwrightError('E_TEMPLATE', `template ${template} has no root entry in /etc/shadow`, { hint: 'the base system needs shadow passwords (Debian has them)' });
    out.rootPasswordHash = hashPassword(password);
  }
  if (request.timezone !== undefined) {
    if (!facts?.timezoneExists) {
      throw new DiskwrightError('E_INVALID_ARGUMENT', `time zone ${request.timezone} is not in template ${template} (/usr/share/zoneinfo/${request.timezone})`, {
        hint: 'use a tz database name such as Europe/Berlin or UTC (the image needs the tzdata package)',
      });
    }
    out.timezone = request.timezone;
  }
  if (request.firstbootFile !== undefined) {
    const script = await readLimited(request.firstbootFile, MAX_FIRSTBOOT_BYTES, '--firstboot');
    if (!script.startsWith('#!')) throw new InvalidArgumentError(`--firstboot ${request.firstbootFile} does not start with #! (an interpreter line)`, { hint: 'start it with #!/bin/sh' });
    if (!facts || facts.init === 'unknown') throw new DiskwrightError('E_TEMPLATE', `template ${template} has neither systemd nor /etc/init.d: cannot run a first-boot script`);
    out.firstboot = { script, init: facts.init };
  }
  return out;
}

function passwdEntry(text: string, name: string): TemplateFacts['user'] {
  for (const line of splitLines(text)) {
    const fields = line.split(':');
    if (fields[0] !== name || fields.length < 7) continue;
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    const home = fields[5]!;
    if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || !home.startsWith('/') || home.split('/').includes('..')) return undefined;
    return { name, uid, gid, home };
  }
  return undefined;
}

/** Reads what {@link prepareCustomization} needs from an open (read-only) template. */
export async function readTemplateFacts(fs: FilesystemSession, request: CustomizationRequest): Promise<TemplateFacts> {
  const passwd = (await readTextFile(fs, '/etc/passwd'))?.text ?? '';
  const shadow = (await readTextFile(fs, '/etc/shadow'))?.text ?? '';
  const user = passwdEntry(passwd, request.sshUser ?? 'root');
  const zone = request.timezone === undefined ? undefined : await resolveInImage(fs, posix.join('/usr/share/zoneinfo', request.timezone));
  const systemd = (await findUnit(fs, 'systemd-journald.service')) !== undefined;
  const initd = (await resolveInImage(fs, '/etc/init.d'))?.stat.kind === 'directory';
  return {
    ...(user ? { user } : {}),
    ...(request.timezone !== undefined ? { timezoneExists: zone?.stat.kind === 'file' } : {}),
    init: systemd ? 'systemd' : initd ? 'sysvinit' : 'unknown',
    hasShadowRoot: splitLines(shadow).some((line) => line.startsWith('root:')),
  };
}

export const FIRSTBOOT_SCRIPT = '/usr/local/sbin/diskwright-firstboot';
export const FIRSTBOOT_DONE = '/var/lib/diskwright/firstboot.done';
export const FIRSTBOOT_UNIT = '/etc/systemd/system/diskwright-firstboot.service';
export const FIRSTBOOT_WANTS = '/etc/systemd/system/multi-user.target.wants/diskwright-firstboot.service';
export const FIRSTBOOT_INITD = '/etc/init.d/diskwright-firstboot';
/** The marker is written before the script runs: a script that fails or reboots is not run again. */
export const FIRSTBOOT_UNIT_TEXT = joinLines([
  '# Written by diskwright instance create --firstboot: runs once, at the first boot.',
  '[Unit]',
  'Description=diskwright first-boot script',
  'Wants=network-online.target',
  'After=network-online.target',
  `ConditionPathExists=!${FIRSTBOOT_DONE}`,
  '',
  '[Service]',
  'Type=oneshot',
  `ExecStartPre=/bin/mkdir -p ${posix.dirname(FIRSTBOOT_DONE)}`,
  `ExecStartPre=/bin/touch ${FIRSTBOOT_DONE}`,
  `ExecStart=${FIRSTBOOT_SCRIPT}`,
  'StandardOutput=journal+console',
  '',
  '[Install]',
  'WantedBy=multi-user.target',
]);
export const FIRSTBOOT_INITD_TEXT = joinLines([
  '#!/bin/sh',
  '### BEGIN INIT INFO',
  '# Provides:          diskwright-firstboot',
  '# Required-Start:    $all',
  '# Required-Stop:',
  '# Default-Start:     2 3 4 5',
  '# Default-Stop:',
  '# Short-Description: diskwright first-boot script (runs once)',
  '### END INIT INFO',
  'case "$1" in',
  '  start)',
  `    [ -e ${FIRSTBOOT_DONE} ] && exit 0`,
  `    mkdir -p ${posix.dirname(FIRSTBOOT_DONE)} && touch ${FIRSTBOOT_DONE}`,
  `    ${FIRSTBOOT_SCRIPT}`,
  '    ;;',
  'esac',
  'exit 0',
]);
/** Where sysvinit runs the script: last in the multi-user runlevels. */
const SYSV_RUNLEVEL_LINKS = ['/etc/rc2.d', '/etc/rc3.d', '/etc/rc4.d', '/etc/rc5.d'].map((d) => `${d}/S99diskwright-firstboot`);
/** Seeds systemd-random-seed and Debian's sysvinit urandom script load at boot. */
const SEED_PLACES = [
  { dir: '/var/lib/systemd', file: '/var/lib/systemd/random-seed' },
  { dir: '/var/lib/urandom', file: '/var/lib/urandom/random-seed' },
] as const;

async function mkdirOwned(fs: FilesystemSession, path: string, mode: number, uid: number, gid: number): Promise<void> {
  const existing = await resolveInImage(fs, path);
  if (existing?.stat.kind === 'directory') return;
  await fs.mkdir(path, { parents: true, mode, uid, gid });
}

/** What the customize step did, one line per change. */
export type CustomizeReport = string[];

/**
 * Applies a customization to an open (writable) instance image, plus a fresh random seed for
 * every instance (the template carries none, see the random-seed operation).
 */
export async function applyCustomization(fs: FilesystemSession, customization: Customization): Promise<CustomizeReport> {
  const report: string[] = [];
  for (const place of SEED_PLACES) {
    if ((await resolveInImage(fs, place.dir))?.stat.kind !== 'directory') continue;
    if ((await lstatIfExists(fs, place.file))?.kind === 'symlink') continue;
    await fs.writeFile(place.file, randomBytes(RANDOM_SEED_BYTES), { mode: 0o600, uid: 0, gid: 0 });
    report.push(`random seed ${place.file}`);
  }
  const keys = customization.authorizedKeys;
  if (keys) {
    const sshDir = posix.join(keys.home, '.ssh');
    await mkdirOwned(fs, keys.home, 0o700, keys.uid, keys.gid);
    await mkdirOwned(fs, sshDir, 0o700, keys.uid, keys.gid);
    const path = posix.join(sshDir, 'authorized_keys');
    const existing = await readTextFile(fs, path);
    const lines = existing ? splitLines(existing.text) : [];
    for (const key of keys.keys) if (!lines.includes(key)) lines.push(key);
    // sshd's StrictModes wants the file and its directory owned by the user and not group-writable.
    await fs.writeFile(path, joinLines(lines), { mode: 0o600, uid: keys.uid, gid: keys.gid });
    report.push(`${keys.keys.length} key(s) in ${path}`);
  }
  if (customization.rootPasswordHash !== undefined) {
    const shadow = await readTextFile(fs, '/etc/shadow');
    if (!shadow) throw new DiskwrightError('E_TEMPLATE', 'the instance has no /etc/shadow');
    const today = String(Math.floor(Date.now() / 86_400_000));
    const next = splitLines(shadow.text).map((line) => {
      const fields = line.split(':');
      if (fields[0] !== 'root' || fields.length < 3) return line;
      fields[1] = customization.rootPasswordHash!;
      fields[2] = today;
      return fields.join(':');
    });
    await replaceText(fs, shadow.path, shadow.stat, joinLines(next));
    report.push('root password (SHA-512 crypt) in /etc/shadow');
  }
  if (customization.timezone !== undefined) {
    const zone = customization.timezone;
    if (await lstatIfExists(fs, '/etc/localtime')) await fs.rm('/etc/localtime');
    await fs.symlink(`/usr/share/zoneinfo/${zone}`, '/etc/localtime', { uid: 0, gid: 0 });
    const timezone = await readTextFile(fs, '/etc/timezone');
    if (timezone) await replaceText(fs, timezone.path, timezone.stat, `${zone}\n`);
    else await fs.writeFile('/etc/timezone', `${zone}\n`, { mode: 0o644, uid: 0, gid: 0 });
    report.push(`time zone ${zone}`);
  }
  const firstboot = customization.firstboot;
  if (firstboot) {
    await mkdirOwned(fs, posix.dirname(FIRSTBOOT_SCRIPT), 0o755, 0, 0);
    await fs.writeFile(FIRSTBOOT_SCRIPT, firstboot.script, { mode: 0o700, uid: 0, gid: 0 });
    if (firstboot.init === 'systemd') {
      await mkdirOwned(fs, posix.dirname(FIRSTBOOT_UNIT), 0o755, 0, 0);
      await fs.writeFile(FIRSTBOOT_UNIT, FIRSTBOOT_UNIT_TEXT, { mode: 0o644, uid: 0, gid: 0 });
      await mkdirOwned(fs, posix.dirname(FIRSTBOOT_WANTS), 0o755, 0, 0);
      if (!(await lstatIfExists(fs, FIRSTBOOT_WANTS))) await fs.symlink(FIRSTBOOT_UNIT, FIRSTBOOT_WANTS, { uid: 0, gid: 0 });
      report.push(`first-boot script ${FIRSTBOOT_SCRIPT} (${FIRSTBOOT_UNIT})`);
    } else {
      await fs.writeFile(FIRSTBOOT_INITD, FIRSTBOOT_INITD_TEXT, { mode: 0o755, uid: 0, gid: 0 });
      for (const link of SYSV_RUNLEVEL_LINKS) {
        if ((await resolveInImage(fs, posix.dirname(link)))?.stat.kind !== 'directory') continue;
        if (!(await lstatIfExists(fs, link))) await fs.symlink('../init.d/diskwright-firstboot', link, { uid: 0, gid: 0 });
      }
      report.push(`first-boot script ${FIRSTBOOT_SCRIPT} (${FIRSTBOOT_INITD}, S99 in rc2-5.d)`);
    }
  }
  return report;
}


