import { posix } from 'node:path';
import type { FilesystemSession } from '../../ext/types.js';
import { lstatIfExists, readTextFile, replaceText, resolveInImage } from '../image-path.js';
import { ROOT_FILE, applied, notApplicable, type TemplateOperation } from './types.js';

export const UDEV_NET_RULES = '/etc/udev/rules.d/70-persistent-net.rules';
export const HOSTNAME_PATH = '/etc/hostname';
export const RESOLV_CONF = '/etc/resolv.conf';
export const HOSTNAME_CONTENT = 'HOSTNAME-TMPL\n';
export const RESOLV_CONTENT = 'nameserver NAMESERVER-TMPL\n';

/**
 * Writes `content` to an existing regular file (keeping mode and owner, through symlinks inside
 * the image) or creates it as root 0644 when `create` and its directory exists.
 */
async function setFileContent(
  fs: FilesystemSession,
  path: string,
  content: string,
  create: boolean,
): Promise<{ changed: boolean; path: string } | undefined> {
  const file = await readTextFile(fs, path);
  if (file) {
    if (file.text === content) return { changed: false, path: file.path };
    await replaceText(fs, file.path, file.stat, content);
    return { changed: true, path: file.path };
  }
  if (!create || (await lstatIfExists(fs, path))) return undefined;
  const dir = await resolveInImage(fs, posix.dirname(path));
  if (!dir || dir.stat.kind !== 'directory') return undefined;
  await fs.writeFile(posix.join(dir.path, posix.basename(path)), content, ROOT_FILE);
  return { changed: true, path: posix.join(dir.path, posix.basename(path)) };
}

export const udevNetRulesOperation: TemplateOperation = {
  name: 'udev-persistent-net',
  description: `empty ${UDEV_NET_RULES} so the instance's NIC (new MAC) is eth0 again`,
  async apply(fs) {
    const result = await setFileContent(fs, UDEV_NET_RULES, '', false);
    if (!result) return notApplicable(`${UDEV_NET_RULES} does not exist`);
    return result.changed ? applied(`emptied ${result.path}`) : notApplicable('already empty');
  },
};

export const hostnameOperation: TemplateOperation = {
  name: 'hostname',
  description: '/etc/hostname → HOSTNAME-TMPL',
  async apply(fs) {
    const result = await setFileContent(fs, HOSTNAME_PATH, HOSTNAME_CONTENT, true);
    if (!result) return notApplicable(`${HOSTNAME_PATH} cannot be written (no /etc directory or not a regular file)`);
    return result.changed
      ? applied(`${result.path} → HOSTNAME-TMPL`, [{ path: result.path, text: HOSTNAME_CONTENT }])
      : notApplicable('already HOSTNAME-TMPL', [{ path: result.path, text: HOSTNAME_CONTENT }]);
  },
};

export const resolvConfOperation: TemplateOperation = {
  name: 'resolv-conf',
  description: '/etc/resolv.conf → `nameserver NAMESERVER-TMPL` (a symlink, e.g. to systemd-resolved, is replaced by the file)',
  async apply(fs) {
    const link = await lstatIfExists(fs, RESOLV_CONF);
    if (link?.kind === 'symlink') {
      const target = link.linkTarget ?? (await fs.readlink(RESOLV_CONF));
      await fs.rm(RESOLV_CONF);
      await fs.writeFile(RESOLV_CONF, RESOLV_CONTENT, ROOT_FILE);
      return applied(`replaced the symlink to ${target} by a static file with NAMESERVER-TMPL`, [{ path: RESOLV_CONF, text: RESOLV_CONTENT }]);
    }
    const result = await setFileContent(fs, RESOLV_CONF, RESOLV_CONTENT, true);
    if (!result) return notApplicable(`${RESOLV_CONF} cannot be written (no /etc directory or not a regular file)`);
    return result.changed
      ? applied(`${result.path} → nameserver NAMESERVER-TMPL`, [{ path: result.path, text: RESOLV_CONTENT }])
      : notApplicable('already nameserver NAMESERVER-TMPL', [{ path: result.path, text: RESOLV_CONTENT }]);
  },
};

export const MACHINE_ID = '/etc/machine-id';
export const DBUS_MACHINE_ID = '/var/lib/dbus/machine-id';

export const machineIdOperation: TemplateOperation = {
  name: 'machine-id',
  description: `empty ${MACHINE_ID} (systemd makes a new one at first boot); remove the D-Bus copy ${DBUS_MACHINE_ID} unless it is a symlink`,
  async apply(fs) {
    const done: string[] = [];
    const etc = await lstatIfExists(fs, MACHINE_ID);
    if (etc?.kind === 'file' && etc.size > 0) {
      await replaceText(fs, MACHINE_ID, etc, '');
      done.push(`emptied ${MACHINE_ID}`);
    }
    const dbus = await lstatIfExists(fs, DBUS_MACHINE_ID);
    // A regular copy would keep the old id; libdbus falls back to /etc/machine-id without it.
    if (dbus?.kind === 'file') {
      await fs.rm(DBUS_MACHINE_ID);
      done.push(`removed ${DBUS_MACHINE_ID}`);
    }
    if (done.length > 0) return applied(done.join('; '));
    if (!etc && !dbus) return notApplicable('no machine-id in the image');
    return notApplicable(dbus?.kind === 'symlink' ? 'already empty (D-Bus id is a symlink)' : 'already empty');
  },
};
