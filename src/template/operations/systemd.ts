import { posix } from 'node:path';
import type { FilesystemSession } from '../../ext/types.js';
import { listDirectory, lstatIfExists, readTextFile, replaceText, resolveInImage } from '../image-path.js';
import { ROOT_DIR, ROOT_FILE, applied, notApplicable, type TemplateOperation } from './types.js';

/** Where distributions install unit files (merged-/usr images link /lib to usr/lib). */
export const SYSTEMD_UNIT_DIRS = ['/lib/systemd/system', '/usr/lib/systemd/system'] as const;
export const SERIAL_GETTY_WANTS = '/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service';

/** The first unit directory path holding `unit`, or undefined when no unit file of that name exists. */
export async function findUnit(fs: FilesystemSession, unit: string): Promise<string | undefined> {
  for (const dir of [...SYSTEMD_UNIT_DIRS, '/etc/systemd/system']) {
    const path = posix.join(dir, unit);
    const resolved = await resolveInImage(fs, path);
    if (resolved?.stat.kind === 'file') return path;
  }
  return undefined;
}

async function mkdirp(fs: FilesystemSession, path: string): Promise<void> {
  const resolved = await resolveInImage(fs, path);
  if (resolved?.stat.kind === 'directory') return;
  await fs.mkdir(path, { parents: true, ...ROOT_DIR });
}

export const serialGettyOperation: TemplateOperation = {
  name: 'serial-getty',
  description: 'systemd: enable serial-getty@ttyS0.service (console login on the serial port without kernel arguments)',
  async apply(fs) {
    const unit = await findUnit(fs, 'serial-getty@.service');
    if (!unit) return notApplicable('no systemd serial-getty@.service in the image');
    const existing = await lstatIfExists(fs, SERIAL_GETTY_WANTS);
    if (existing) return notApplicable('serial-getty@ttyS0.service is already enabled');
    await mkdirp(fs, posix.dirname(SERIAL_GETTY_WANTS));
    await fs.symlink(unit, SERIAL_GETTY_WANTS, { uid: 0, gid: 0 });
    return applied(`${SERIAL_GETTY_WANTS} → ${unit}`);
  },
};

export const SSH_DIR = '/etc/ssh';
export const SSH_KEYGEN_UNIT = '/etc/systemd/system/diskwright-ssh-host-keys.service';
export const SSH_KEYGEN_WANTS = '/etc/systemd/system/multi-user.target.wants/diskwright-ssh-host-keys.service';
/** Regenerates the removed host keys at first boot, before sshd starts (systemd.unit(5)). */
export const SSH_KEYGEN_UNIT_TEXT = [
  '# Written by diskwright template make: the template carries no SSH host keys.',
  '[Unit]',
  'Description=Generate SSH host keys (first boot of a diskwright instance)',
  'Before=ssh.service sshd.service',
  'ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key',
  '',
  '[Service]',
  'Type=oneshot',
  'ExecStart=/usr/bin/ssh-keygen -A',
  '',
  '[Install]',
  'WantedBy=multi-user.target',
  '',
].join('\n');

/** Debian's sysvinit script for sshd, and the defaults file it sources before every action. */
export const SYSV_SSH_SCRIPT = '/etc/init.d/ssh';
export const SYSV_SSH_DEFAULTS = '/etc/default/ssh';
export const SYSV_KEYGEN_MARKER = '# diskwright: first-boot SSH host keys';
/** Shell lines appended to /etc/default/ssh on sysvinit images (only generates keys that are missing). */
export const SYSV_KEYGEN_HOOK = [
  SYSV_KEYGEN_MARKER,
  'if ! ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1; then /usr/bin/ssh-keygen -A; fi',
  '',
].join('\n');

export const sshHostKeysOperation: TemplateOperation = {
  name: 'ssh-host-keys',
  description:
    'remove /etc/ssh/ssh_host_* (every instance must get its own keys) and regenerate them at first boot with `ssh-keygen -A`: a oneshot unit before sshd on systemd images, a hook in /etc/default/ssh (sourced by /etc/init.d/ssh) on sysvinit images',
  async apply(fs) {
    const removed: string[] = [];
    for (const entry of await listDirectory(fs, SSH_DIR)) {
      if (!entry.name.startsWith('ssh_host_') || entry.kind === 'directory') continue;
      await fs.rm(posix.join(SSH_DIR, entry.name));
      removed.push(entry.name);
    }
    const notes: string[] = [];
    if (removed.length > 0) notes.push(`removed ${removed.length} host key file(s) from ${SSH_DIR}`);
    const sshd = (await findUnit(fs, 'ssh.service')) ?? (await findUnit(fs, 'sshd.service'));
    if (sshd) {
      const unit = await readTextFile(fs, SSH_KEYGEN_UNIT);
      if (unit?.text !== SSH_KEYGEN_UNIT_TEXT) {
        await mkdirp(fs, posix.dirname(SSH_KEYGEN_UNIT));
        if (unit) await fs.rm(unit.path);
        await fs.writeFile(SSH_KEYGEN_UNIT, SSH_KEYGEN_UNIT_TEXT, ROOT_FILE);
        notes.push(`added ${SSH_KEYGEN_UNIT}`);
      }
      if (!(await lstatIfExists(fs, SSH_KEYGEN_WANTS))) {
        await mkdirp(fs, posix.dirname(SSH_KEYGEN_WANTS));
        await fs.symlink(SSH_KEYGEN_UNIT, SSH_KEYGEN_WANTS, { uid: 0, gid: 0 });
        notes.push('enabled it');
      }
    } else if (await resolveInImage(fs, SYSV_SSH_SCRIPT)) {
      // sysvinit: /etc/init.d/ssh sources /etc/default/ssh before it starts sshd.
      const defaults = await readTextFile(fs, SYSV_SSH_DEFAULTS);
      if (!defaults?.text.includes(SYSV_KEYGEN_MARKER)) {
        const before = defaults?.text ?? '';
        const text = `${before}${before === '' || before.endsWith('\n') ? '' : '\n'}${SYSV_KEYGEN_HOOK}`;
        if (defaults) await replaceText(fs, defaults.path, defaults.stat, text);
        else {
          await mkdirp(fs, posix.dirname(SYSV_SSH_DEFAULTS));
          await fs.writeFile(SYSV_SSH_DEFAULTS, text, ROOT_FILE);
        }
        notes.push(`sysvinit: ${SYSV_SSH_DEFAULTS} runs \`ssh-keygen -A\` before sshd starts when keys are missing`);
      }
    } else if (removed.length > 0) {
      notes.push('no sshd unit or init script: the instance must run `ssh-keygen -A` before sshd starts');
    }
    if (notes.length > 0) return applied(notes.join('; '));
    const hasSsh = await resolveInImage(fs, SSH_DIR);
    return notApplicable(hasSsh ? 'no SSH host keys in the image' : `${SSH_DIR} does not exist`);
  },
};

export const CLOUD_DIR = '/etc/cloud';
export const CLOUD_INIT_DISABLED = '/etc/cloud/cloud-init.disabled';

export const cloudInitOperation: TemplateOperation = {
  name: 'cloud-init',
  description: `disable cloud-init (${CLOUD_INIT_DISABLED}) so it does not replace the static network and host name at first boot`,
  async apply(fs) {
    const dir = await resolveInImage(fs, CLOUD_DIR);
    if (!dir || dir.stat.kind !== 'directory') return notApplicable(`${CLOUD_DIR} does not exist (no cloud-init)`);
    if (await lstatIfExists(fs, CLOUD_INIT_DISABLED)) return notApplicable('cloud-init is already disabled');
    await fs.writeFile(CLOUD_INIT_DISABLED, '', ROOT_FILE);
    return applied(`created ${CLOUD_INIT_DISABLED}`);
  },
};
