import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** Processes (other than this one) holding `path` open, with the lock they hold on it, if any. */
export interface FileHolder {
  readonly pid: number;
  /** 'WRITE' / 'READ' from the kernel's lock line in fdinfo; undefined: open, not locked. */
  readonly lock: 'WRITE' | 'READ' | undefined;
  /** The descriptor's access mode from fdinfo `flags:` (O_WRONLY/O_RDWR); undefined: unknown. */
  readonly writable: boolean | undefined;
  /** The program's name from /proc/PID/comm (15 bytes at most, printable ASCII); undefined: unknown. */
  readonly program: string | undefined;
}

/** The name diskwright's CLI gives its process (src/cli/main.ts), as /proc/PID/comm shows it. */
export const DISKWRIGHT_PROCESS_TITLE = 'diskwright';

/**
 * Who has `path` open, from /proc (Linux): each process's fd links and the `lock:` line of its
 * fdinfo (OFD locks show pid -1 in /proc/locks, so the holder is found by its descriptor).
 * Processes we may not inspect are skipped; elsewhere than Linux the list is empty.
 */
export function findHolders(path: string, options: { readonly byInode?: boolean } = {}): FileHolder[] {
  // byInode: every open of the same file counts, by any of its names (hard links, a renamed temp).
  const file = options.byInode ? statSync(path, { throwIfNoEntry: false }) : undefined;
  if (options.byInode && !file) return [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid);
  } catch {
    return [];
  }
  const holders: FileHolder[] = [];
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    let found: FileHolder | undefined;
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (file) {
        const open = statSync(`/proc/${pid}/fd/${fd}`, { throwIfNoEntry: false });
        if (!open || open.ino !== file.ino || open.dev !== file.dev) continue;
      } else if (target !== path) continue;
      let lock: FileHolder['lock'];
      let writable: boolean | undefined;
      try {
        const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
        const match = /^lock:\s+\d+:\s+\S+\s+\S+\s+(WRITE|READ)\b/m.exec(info);
        lock = match ? (match[1] as 'WRITE' | 'READ') : undefined;
        const flags = /^flags:\s+([0-7]+)$/m.exec(info);
        // O_ACCMODE: 0 O_RDONLY, 1 O_WRONLY, 2 O_RDWR.
        writable = flags ? (parseInt(flags[1]!, 8) & 3) !== 0 : undefined;
      } catch {
        lock = undefined;
      }
      if (!found || (lock && !found.lock)) found = { pid: Number(pid), lock, writable, program: undefined };
      if (lock === 'WRITE') break;
    }
    if (found) holders.push({ ...found, program: programName(found.pid) });
  }
  return holders;
}

/** /proc/PID/comm with anything unprintable replaced (it is whatever the process named itself). */
function programName(pid: number): string | undefined {
  try {
    const name = readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '').replace(/[^\x20-\x7e]/g, '?');
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}

/** True when some other process has `path` open. */
export function isOpenElsewhere(path: string): boolean {
  return findHolders(path).length > 0;
}
