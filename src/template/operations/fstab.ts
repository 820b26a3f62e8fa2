import { readTextFile, replaceText } from '../image-path.js';
import { DEFAULT_CONTEXT, applied, joinLines, notApplicable, splitLines, type OperationContext, type TemplateOperation } from './types.js';

export const FSTAB_PATH = '/etc/fstab';
/** Filled per instance with the root filesystem's UUID (the template's, or a new one). */
export const FSUUID_PLACEHOLDER = 'FSUUID-TMPL';
/** What the root entry names after the operation. */
export const ROOT_SPEC = `UUID=${FSUUID_PLACEHOLDER}`;
/** Prefix of the entries the operation comments out (the note the file carries). */
export const FSTAB_NOTE = '# diskwright: no such device in an instance: ';

/** Filesystems that need no block device (kernel pseudo filesystems, network and FUSE mounts). */
const NO_DEVICE_TYPES = new Set([
  'proc', 'sysfs', 'tmpfs', 'devpts', 'devtmpfs', 'cgroup', 'cgroup2', 'securityfs', 'debugfs', 'hugetlbfs', 'mqueue',
  'efivarfs', 'fusectl', 'configfs', 'pstore', 'bpf', 'tracefs', 'ramfs', 'overlay', 'binfmt_misc', 'autofs', 'none',
  'nfs', 'nfs4', 'cifs', 'smbfs', 'smb3', 'glusterfs', 'ceph', '9p', 'virtiofs', 'davfs', 'sshfs',
]);

/** One parsed fstab(5) entry. */
export interface FstabEntry {
  readonly spec: string;
  readonly file: string;
  readonly type: string;
  readonly options: readonly string[];
}

/** Splits an fstab line into its fields, or undefined for comments, blank and malformed lines. */
export function parseFstabLine(line: string): FstabEntry | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const fields = trimmed.split(/\s+/);
  if (fields.length < 2) return undefined;
  return { spec: fields[0]!, file: fields[1]!, type: fields[2] ?? 'auto', options: (fields[3] ?? 'defaults').split(',') };
}

/** Whether a spec names the template's own filesystem (by UUID or LABEL). */
function namesRoot(spec: string, fs: OperationContext['filesystem']): boolean {
  if (spec === ROOT_SPEC) return true;
  if (!fs) return false;
  const [key, value] = splitSpec(spec);
  if (key === 'UUID') return value.toLowerCase() === fs.uuid.toLowerCase();
  if (key === 'LABEL') return fs.label !== '' && value === fs.label;
  return false;
}

function splitSpec(spec: string): [string, string] {
  const eq = spec.indexOf('=');
  if (eq > 0 && /^[A-Z]+$/.test(spec.slice(0, eq))) return [spec.slice(0, eq), spec.slice(eq + 1).replace(/^"(.*)"$/, '$1')];
  return ['', spec];
}

/** A spec naming a block device: `UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=`, `ID=` or a /dev path. */
function namesBlockDevice(spec: string): boolean {
  const [key] = splitSpec(spec);
  return ['UUID', 'LABEL', 'PARTUUID', 'PARTLABEL', 'ID'].includes(key) || spec.startsWith('/dev/');
}

/** What {@link rewriteFstab} did. */
export interface FstabRewrite {
  readonly text: string;
  /** `MOUNTPOINT SPEC` of each entry commented out. */
  readonly commented: readonly string[];
  /** The root entry's spec before, when it was changed to {@link ROOT_SPEC}. */
  readonly rootWas?: string;
  /** True when a swap entry was commented out (the instance should boot with `noresume`). */
  readonly swapRemoved: boolean;
}

/**
 * Rewrites fstab(5) for an instance, whose only disk is the template's filesystem:
 * - the root entry names `UUID=FSUUID-TMPL` (filled per instance) unless it names the
 *   filesystem by its LABEL or as /dev/vda, which stay valid;
 * - entries for other block devices — swap and data partitions of the base disk, by UUID, LABEL,
 *   PARTUUID, PARTLABEL, ID or /dev path — are commented out with a note, so boot does not wait
 *   90 s for them ("Timed out waiting for device");
 * - entries with `noauto` (nothing waits for them), bind mounts, swap files and filesystems that
 *   need no block device (proc, tmpfs, nfs …) stay as they are.
 * Applying it to its own output changes nothing.
 */
export function rewriteFstab(text: string, fs?: OperationContext['filesystem']): FstabRewrite {
  const commented: string[] = [];
  let rootWas: string | undefined;
  let swapRemoved = false;
  const out = splitLines(text).map((line) => {
    const entry = parseFstabLine(line);
    if (!entry) return line;
    if (entry.file === '/') {
      const [key] = splitSpec(entry.spec);
      const stays = entry.spec === ROOT_SPEC || (key === 'LABEL' && namesRoot(entry.spec, fs)) || entry.spec === '/dev/vda' || entry.spec === '/dev/root';
      // Any other device spec for / means this filesystem, which the instance knows by its UUID.
      if (stays || !namesBlockDevice(entry.spec)) return line;
      rootWas = entry.spec;
      return line.replace(/^(\s*)\S+/, `$1${ROOT_SPEC}`);
    }
    if (NO_DEVICE_TYPES.has(entry.type) || entry.type.startsWith('fuse')) return line;
    if (entry.options.includes('bind') || entry.options.includes('rbind') || entry.options.includes('noauto')) return line;
    if (!namesBlockDevice(entry.spec)) return line;
    if (namesRoot(entry.spec, fs)) {
      const [key] = splitSpec(entry.spec);
      return key === 'UUID' ? line.replace(/^(\s*)\S+/, `$1${ROOT_SPEC}`) : line;
    }
    commented.push(`${entry.file} ${entry.spec}`);
    if (entry.type === 'swap') swapRemoved = true;
    return `${FSTAB_NOTE}${line}`;
  });
  return { text: joinLines(out), commented, ...(rootWas !== undefined ? { rootWas } : {}), swapRemoved };
}

/** Kernel arguments an instance of this template needs because of the fstab rewrite. */
export function fstabKernelArgs(text: string): string[] {
  return splitLines(text).some((line) => line.startsWith(FSTAB_NOTE) && parseFstabLine(line.slice(FSTAB_NOTE.length))?.type === 'swap') ? ['noresume'] : [];
}

export const fstabOperation: TemplateOperation = {
  name: 'fstab',
  description: `/etc/fstab: entries for devices an instance does not have (swap and data partitions of the base disk, by UUID, LABEL, PARTUUID or /dev path) are commented out with a note; the root entry names ${ROOT_SPEC} (the instance's filesystem UUID)`,
  async apply(fs, context = DEFAULT_CONTEXT) {
    const file = await readTextFile(fs, FSTAB_PATH);
    if (!file) return notApplicable(`${FSTAB_PATH} does not exist`);
    const result = rewriteFstab(file.text, context.filesystem);
    const owned = [{ path: file.path, text: result.text }];
    const kernelArgs = fstabKernelArgs(result.text);
    if (result.text === file.text) return { ...notApplicable('every entry names a device an instance has', owned), kernelArgs };
    await replaceText(fs, file.path, file.stat, result.text);
    const done: string[] = [];
    if (result.rootWas !== undefined) done.push(`root ${result.rootWas} → ${ROOT_SPEC}`);
    if (result.commented.length > 0) done.push(`commented out ${result.commented.join(', ')}`);
    return { ...applied(done.join('; ') || `root entry → ${ROOT_SPEC}`, owned), kernelArgs };
  },
};
