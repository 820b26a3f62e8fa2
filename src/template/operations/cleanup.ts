import { posix } from 'node:path';
import type { FileStat, FilesystemSession } from '../../ext/types.js';
import { listDirectory, resolveInImage } from '../image-path.js';
import { applied, notApplicable, type TemplateOperation } from './types.js';

/**
 * The virt-sysprep-style clean-ups: what a used system leaves behind that no instance should
 * inherit (logs, shell history, temp files, package caches, DHCP leases, the random seed, login
 * records, crash dumps, editor backups, mail). Each removes or empties files only; directories the
 * services expect stay. All are idempotent: a second run finds nothing and changes nothing.
 */

/** Directory levels a clean-up walks below its start (real trees are far shallower). */
const MAX_WALK_DEPTH = 16;

/** Every entry below `dir` (after following a symlinked `dir`), depth-first, directories before their contents. */
async function walk(fs: FilesystemSession, dir: string, depth = 0): Promise<FileStat[]> {
  if (depth > MAX_WALK_DEPTH) return [];
  const out: FileStat[] = [];
  for (const entry of await listDirectory(fs, dir)) {
    out.push(entry);
    if (entry.kind === 'directory') out.push(...(await walk(fs, entry.path, depth + 1)));
  }
  return out;
}

/** Empties a regular file, keeping mode and owner (services reopen it, tmpfiles need not recreate it). */
async function truncate(fs: FilesystemSession, file: FileStat): Promise<void> {
  await fs.writeFile(file.path, '', { mode: file.mode, uid: file.uid, gid: file.gid });
}

/** Removes every entry of `dir` (recursively), keeping `dir` itself; returns the count. */
async function emptyDirectory(fs: FilesystemSession, dir: string, keep: (entry: FileStat) => boolean = () => false): Promise<number> {
  let removed = 0;
  for (const entry of await listDirectory(fs, dir)) {
    if (keep(entry)) continue;
    await fs.rm(entry.path, { recursive: true });
    removed += 1;
  }
  return removed;
}

/** Directories that exist (after links), deduplicated by where they resolve (/var/mail → /var/spool/mail). */
async function existingDirs(fs: FilesystemSession, dirs: readonly string[]): Promise<string[]> {
  const seen = new Set<string>();
  for (const dir of dirs) {
    const resolved = await resolveInImage(fs, dir);
    if (resolved?.stat.kind === 'directory') seen.add(resolved.path);
  }
  return [...seen];
}

/** Home directories: /root and every directory in /home. */
async function homes(fs: FilesystemSession): Promise<string[]> {
  const dirs = ['/root', ...(await listDirectory(fs, '/home')).filter((e) => e.kind === 'directory').map((e) => e.path)];
  return existingDirs(fs, dirs);
}

function summary(what: string, count: number, where: readonly string[]): string {
  return `${what} ${count} in ${where.join(', ')}`;
}

/** Login records the utmp operation empties (so logfiles leaves them to it). */
export const LOGIN_RECORDS = ['/var/log/wtmp', '/var/log/btmp', '/var/log/lastlog', '/var/log/faillog', '/var/run/utmp'] as const;
/** Rotated logs: `syslog.1`, `syslog.2.gz`, `dpkg.log.1`, `messages-20240101`, `*.old`, compressed ones. */
const ROTATED_LOG = /(\.[0-9]+(\.(gz|xz|bz2|zst|lz4))?|\.(gz|xz|bz2|zst|lz4)|\.old|-[0-9]{8}(\.(gz|xz))?)$/;
export const LOG_DIR = '/var/log';
export const JOURNAL_DIR = '/var/log/journal';

export const logfilesOperation: TemplateOperation = {
  name: 'logfiles',
  description: `${LOG_DIR}: rotated and compressed logs removed, every other log file emptied (mode and owner kept), the systemd journal's per-machine directories in ${JOURNAL_DIR} removed; login records are left to utmp`,
  async apply(fs) {
    let removed = 0;
    let emptied = 0;
    const journal = (await existingDirs(fs, [JOURNAL_DIR]))[0];
    if (journal) removed += await emptyDirectory(fs, journal);
    for (const entry of await walk(fs, LOG_DIR)) {
      if (entry.kind !== 'file' || (LOGIN_RECORDS as readonly string[]).includes(entry.path) || (journal && entry.path.startsWith(`${journal}/`))) continue;
      if (ROTATED_LOG.test(entry.name)) {
        await fs.rm(entry.path);
        removed += 1;
      } else if (entry.size > 0) {
        await truncate(fs, entry);
        emptied += 1;
      }
    }
    if (removed + emptied === 0) return notApplicable(`no log content in ${LOG_DIR}`);
    return applied(`removed ${removed}, emptied ${emptied} file(s) in ${LOG_DIR}`);
  },
};

/** Shell and tool histories in home directories (what virt-sysprep's bash-history removes and their siblings). */
export const HISTORY_FILES = ['.bash_history', '.zsh_history', '.sh_history', '.ash_history', '.history', '.python_history', '.lesshst', '.mysql_history', '.psql_history', '.sqlite_history', '.node_repl_history', '.viminfo'] as const;

export const bashHistoryOperation: TemplateOperation = {
  name: 'bash-history',
  description: `shell histories (${HISTORY_FILES.join(', ')}) removed from /root and /home/*`,
  async apply(fs) {
    const gone: string[] = [];
    for (const home of await homes(fs)) {
      for (const entry of await listDirectory(fs, home)) {
        if (entry.kind === 'directory' || !(HISTORY_FILES as readonly string[]).includes(entry.name)) continue;
        await fs.rm(entry.path);
        gone.push(entry.path);
      }
    }
    if (gone.length === 0) return notApplicable('no shell history in /root or /home/*');
    return applied(`removed ${gone.join(', ')}`);
  },
};

export const TMP_DIRS = ['/tmp', '/var/tmp'] as const;

export const tmpFilesOperation: TemplateOperation = {
  name: 'tmp-files',
  description: `everything in ${TMP_DIRS.join(' and ')} removed (the directories and their modes stay)`,
  async apply(fs) {
    const dirs = await existingDirs(fs, TMP_DIRS);
    let removed = 0;
    for (const dir of dirs) removed += await emptyDirectory(fs, dir);
    if (removed === 0) return notApplicable(`${TMP_DIRS.join(' and ')} are empty`);
    return applied(summary('removed', removed, dirs));
  },
};

export const APT_CACHE = '/var/cache/apt';
/** Caches of dnf, yum, zypper and apk: their contents are rebuilt on the next run. */
export const OTHER_PACKAGE_CACHES = ['/var/cache/dnf', '/var/cache/yum', '/var/cache/zypp/packages', '/var/cache/apk'] as const;

export const packageManagerCacheOperation: TemplateOperation = {
  name: 'package-manager-cache',
  description: `apt: downloaded .deb files (${APT_CACHE}/archives, partial/) and ${APT_CACHE}/*.bin removed; the contents of ${OTHER_PACKAGE_CACHES.join(', ')} removed (dnf, yum, zypper, apk). Package lists stay`,
  async apply(fs) {
    let removed = 0;
    const where: string[] = [];
    const apt = (await existingDirs(fs, [APT_CACHE]))[0];
    if (apt) {
      let here = 0;
      for (const entry of await listDirectory(fs, apt)) {
        if (entry.kind === 'file' && entry.name.endsWith('.bin')) {
          await fs.rm(entry.path);
          here += 1;
        }
      }
      for (const dir of [posix.join(apt, 'archives'), posix.join(apt, 'archives/partial')]) {
        for (const entry of await listDirectory(fs, dir)) {
          // `lock` and the partial/ directory belong to apt's layout; .deb files are the cache.
          if (entry.kind !== 'file' || entry.name === 'lock') continue;
          if (dir.endsWith('/archives') && !entry.name.endsWith('.deb')) continue;
          await fs.rm(entry.path);
          here += 1;
        }
      }
      if (here > 0) where.push(apt);
      removed += here;
    }
    for (const dir of await existingDirs(fs, OTHER_PACKAGE_CACHES)) {
      const here = await emptyDirectory(fs, dir);
      if (here > 0) where.push(dir);
      removed += here;
    }
    if (removed === 0) return notApplicable('no package manager cache');
    return applied(summary('removed', removed, where));
  },
};

/** Lease directories of dhclient (Debian, RHEL), dhcpcd and NetworkManager's internal client. */
export const DHCP_STATE_DIRS = ['/var/lib/dhcp', '/var/lib/dhclient', '/var/lib/dhcpcd', '/var/lib/dhcpcd5', '/var/lib/NetworkManager'] as const;
const LEASE_FILE = /(\.leases?|\.lease~|\.duid)$|^(dhclient|internal)-|^dhclient6?\.leases|^duid$/;

export const dhcpClientStateOperation: TemplateOperation = {
  name: 'dhcp-client-state',
  description: `DHCP leases and DUIDs removed from ${DHCP_STATE_DIRS.join(', ')} (so instances do not ask for the base system's address)`,
  async apply(fs) {
    const gone: string[] = [];
    for (const dir of await existingDirs(fs, DHCP_STATE_DIRS)) {
      for (const entry of await walk(fs, dir)) {
        if (entry.kind !== 'file' || !LEASE_FILE.test(entry.name)) continue;
        await fs.rm(entry.path);
        gone.push(entry.path);
      }
    }
    if (gone.length === 0) return notApplicable('no DHCP lease files');
    return applied(`removed ${gone.join(', ')}`);
  },
};

/** Seeds of systemd-random-seed, Debian's sysvinit urandom script and older layouts. */
export const RANDOM_SEEDS = ['/var/lib/systemd/random-seed', '/var/lib/urandom/random-seed', '/var/lib/random-seed'] as const;

export const randomSeedOperation: TemplateOperation = {
  name: 'random-seed',
  description: `the saved random seed removed (${RANDOM_SEEDS.join(', ')}): instances must not start from the same entropy; \`instance create\` writes a fresh one per instance`,
  async apply(fs) {
    const gone: string[] = [];
    for (const path of RANDOM_SEEDS) {
      const found = await resolveInImage(fs, path);
      if (found?.stat.kind !== 'file') continue;
      await fs.rm(found.path);
      gone.push(found.path);
    }
    if (gone.length === 0) return notApplicable('no random seed file');
    return applied(`removed ${gone.join(', ')}`);
  },
};

export const utmpOperation: TemplateOperation = {
  name: 'utmp',
  description: `login records emptied (${LOGIN_RECORDS.join(', ')}; mode and owner kept, so login and last keep working)`,
  async apply(fs) {
    const done: string[] = [];
    for (const path of LOGIN_RECORDS) {
      const found = await resolveInImage(fs, path);
      if (found?.stat.kind !== 'file' || found.stat.size === 0) continue;
      await truncate(fs, found.stat.path === found.path ? found.stat : { ...found.stat, path: found.path });
      done.push(found.path);
    }
    if (done.length === 0) return notApplicable('no login records');
    return applied(`emptied ${done.join(', ')}`);
  },
};

export const CRASH_DIRS = ['/var/crash', '/var/lib/systemd/coredump', '/var/log/dump'] as const;

export const crashDataOperation: TemplateOperation = {
  name: 'crash-data',
  description: `crash dumps and core files removed (contents of ${CRASH_DIRS.join(', ')})`,
  async apply(fs) {
    let removed = 0;
    const where: string[] = [];
    for (const dir of await existingDirs(fs, CRASH_DIRS)) {
      const here = await emptyDirectory(fs, dir);
      if (here > 0) where.push(dir);
      removed += here;
    }
    if (removed === 0) return notApplicable('no crash data');
    return applied(summary('removed', removed, where));
  },
};

/** Where backup files are looked for (configuration, homes, data; not /usr, which packages own). */
export const BACKUP_ROOTS = ['/etc', '/root', '/home', '/srv', '/opt', '/var'] as const;
const BACKUP_FILE = /(~|\.bak)$/;

export const backupFilesOperation: TemplateOperation = {
  name: 'backup-files',
  description: `editor and tool backups (*~, *.bak) removed below ${BACKUP_ROOTS.join(', ')}`,
  async apply(fs) {
    const gone: string[] = [];
    for (const root of await existingDirs(fs, BACKUP_ROOTS)) {
      for (const entry of await walk(fs, root)) {
        if ((entry.kind !== 'file' && entry.kind !== 'symlink') || !BACKUP_FILE.test(entry.name)) continue;
        await fs.rm(entry.path);
        gone.push(entry.path);
      }
    }
    if (gone.length === 0) return notApplicable('no backup files');
    return applied(`removed ${gone.length}: ${gone.slice(0, 8).join(', ')}${gone.length > 8 ? ', …' : ''}`);
  },
};

export const MAIL_SPOOLS = ['/var/spool/mail', '/var/mail'] as const;

export const mailSpoolOperation: TemplateOperation = {
  name: 'mail-spool',
  description: `local mail removed (contents of ${MAIL_SPOOLS.join(', ')})`,
  async apply(fs) {
    let removed = 0;
    const where: string[] = [];
    for (const dir of await existingDirs(fs, MAIL_SPOOLS)) {
      const here = await emptyDirectory(fs, dir);
      if (here > 0) where.push(dir);
      removed += here;
    }
    if (removed === 0) return notApplicable('no mail in the spool');
    return applied(summary('removed', removed, where));
  },
};
