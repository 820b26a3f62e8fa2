import { InvalidArgumentError } from '../errors.js';
import { assertSafeBridge, assertSafeKernelArg, assertSafeName, assertSafePath, assertSafeUri } from './safe.js';

/** Guest network attachment. */
export type NetworkSpec =
  | { readonly kind: 'bridge'; readonly name: string }
  | { readonly kind: 'network'; readonly name: string }
  | { readonly kind: 'user' };

/** Where the guest disk lives: a host file, or a volume in a libvirt storage pool. */
export type DiskSpec = { readonly path: string } | { readonly pool: string; readonly volume: string };

/** Everything virt-install needs for the article's `--import` of a templated disk. */
export interface VirtInstallSpec {
  readonly name: string;
  readonly ramMiB: number;
  readonly vcpus: number;
  /** `--cpu` model (default `host`, as in the article). */
  readonly cpu?: string;
  readonly disk: DiskSpec;
  /** The disk's format (`format=` in --disk); omitted for raw, as the article has it. */
  readonly diskFormat?: 'raw' | 'qcow2';
  readonly network: NetworkSpec;
  readonly mac: string;
  readonly kernel: string;
  readonly initrd?: string;
  /** Guest kernel command line, one token per element. */
  readonly kernelArgs: readonly string[];
  /** osinfo name; without it `--osinfo detect=on,require=off` (virtinst 4.x refuses to run otherwise). */
  readonly os?: string;
  readonly connect?: string;
  readonly virtType?: string;
  /** Guest serial console to a log file (`--serial pty,log.file=PATH`). */
  readonly serialLog?: string;
  /** `vnc` (the article's) or `none`. */
  readonly graphics?: 'vnc' | 'none';
  /**
   * `--cpuset`: `auto` (the article's; libvirt asks numad for a placement, so `virsh start` fails
   * where numad is not installed), `none` (no pinning, flag omitted) or a host CPU range `N` / `N-M`.
   */
  readonly cpuset?: string;
}

/** Validates a `--cpuset` choice: `auto`, `none`, `N` or `N-M` (no commas: virt-install splits on them). */
export function assertCpuset(value: string, option = 'cpuset'): string {
  const range = /^([0-9]{1,4})(?:-([0-9]{1,4}))?$/.exec(value);
  if (value === 'auto' || value === 'none' || (range !== null && (range[2] === undefined || Number(range[2]) >= Number(range[1])))) return value;
  throw new InvalidArgumentError(`Expected \`${option}\` to be auto, none, N or N-M (host CPUs), got ${JSON.stringify(String(value))}`, {
    hint: 'auto needs numad on the host; none leaves CPU placement to the kernel',
  });
}

/** libvirt connection options common to virsh calls. */
export interface ConnectOptions {
  readonly connect?: string | undefined;
}

function positiveInt(value: number, option: string, max: number): string {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be an integer from 1 to ${max}, got ${String(value)}`);
  }
  return String(value);
}

function connectArgs(connect: string | undefined): string[] {
  return connect === undefined ? [] : ['--connect', assertSafeUri(connect)];
}

const MAC_ARG = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** A libvirt domain name as diskwright creates them (one RFC 1123 label). */
export function assertDomainName(name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name)) {
    throw new InvalidArgumentError(`Expected a domain name of letters, digits and inner hyphens (at most 63), got ${JSON.stringify(String(name))}`);
  }
  return name;
}

function networkArg(network: NetworkSpec): string {
  switch (network.kind) {
    case 'bridge':
      return `bridge=${assertSafeBridge(network.name)}`;
    case 'network':
      return `network=${assertSafeName(network.name, 'network')}`;
    case 'user':
      return 'user,model=virtio';
  }
}

/**
 * The virt-install argv (without the program name) for importing a prepared disk: the article's
 * flags, one value per element, every value validated against option injection.
 */
export function buildVirtInstallArgs(spec: VirtInstallSpec): string[] {
  const name = assertDomainName(spec.name);
  if (!MAC_ARG.test(spec.mac)) throw new InvalidArgumentError(`Expected a lower-case MAC address, got ${JSON.stringify(spec.mac)}`);
  const disk =
    'path' in spec.disk
      ? `path=${assertSafePath(spec.disk.path, 'disk')}`
      : `vol=${assertSafeName(spec.disk.pool, 'pool')}/${assertSafeName(spec.disk.volume, 'volume')}`;
  const kernelArgs = spec.kernelArgs.map((t) => assertSafeKernelArg(t));
  const cpuset = assertCpuset(spec.cpuset ?? 'auto');
  const boot = [`kernel=${assertSafePath(spec.kernel, 'kernel')}`];
  if (spec.initrd !== undefined) boot.push(`initrd=${assertSafePath(spec.initrd, 'initrd')}`);
  boot.push(`kernel_args="${kernelArgs.join(' ')}"`);
  const argv = [
    ...connectArgs(spec.connect),
    '--name', name,
    '--ram', positiveInt(spec.ramMiB, 'ram', 16 * 1024 * 1024),
    '--vcpus', positiveInt(spec.vcpus, 'cpus', 4096),
    ...(cpuset === 'none' ? [] : [`--cpuset=${cpuset}`]),
    '--cpu', assertSafeName(spec.cpu ?? 'host', 'cpu'),
    // libvirt must not probe a qcow2 overlay's format (and its backing file is then read as raw).
    '--disk', `${disk}${spec.diskFormat === 'qcow2' ? ',format=qcow2' : ''},bus=virtio,cache=none`,
    '--network', networkArg(spec.network),
    '--mac', spec.mac,
    '--import',
    '--noreboot',
    // diskwright runs virt-install without a terminal: never attach a console or a viewer.
    '--noautoconsole',
    '--graphics', spec.graphics === 'none' ? 'none' : 'vnc',
    '--boot', boot.join(','),
    '--osinfo', spec.os === undefined ? 'detect=on,require=off' : assertSafeName(spec.os, 'os'),
  ];
  if (spec.virtType !== undefined) argv.push('--virt-type', assertSafeName(spec.virtType, 'virt-type'));
  if (spec.serialLog !== undefined) argv.push('--serial', `pty,log.file=${assertSafePath(spec.serialLog, 'serial-log')}`);
  return argv;
}

/** `virsh [--connect URI] start NAME`. */
export function buildVirshStartArgs(name: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'start', assertDomainName(name)];
}

/** `virsh destroy NAME` (hard power-off). */
export function buildVirshDestroyArgs(name: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'destroy', assertDomainName(name)];
}

/** `virsh undefine NAME`. */
export function buildVirshUndefineArgs(name: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'undefine', assertDomainName(name)];
}

/** `virsh domiflist NAME` (interfaces with their MACs). */
export function buildVirshDomiflistArgs(name: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'domiflist', assertDomainName(name)];
}

/** `virsh domblklist NAME --details` (disks with type, device, target, source). */
export function buildVirshDomblklistArgs(name: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'domblklist', assertDomainName(name), '--details'];
}

/** `virsh domstate NAME` — also the cheapest "is it defined?" probe. */
export function buildVirshDomstateArgs(name: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'domstate', assertDomainName(name)];
}

/** `virsh list --all --name`. */
export function buildVirshListArgs(options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'list', '--all', '--name'];
}

/** `virsh net-info NAME` (is a libvirt network defined, and active?). */
export function buildVirshNetInfoArgs(network: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'net-info', assertSafeName(network, 'network')];
}

/** `virsh pool-list --all --name`. */
export function buildVirshPoolListArgs(options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'pool-list', '--all', '--name'];
}

/** `virsh pool-dumpxml NAME` (its target path tells which directory a pool covers). */
export function buildVirshPoolDumpxmlArgs(pool: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'pool-dumpxml', assertSafeName(pool, 'pool')];
}

/** `virsh pool-destroy NAME` (stops a pool; its files stay). */
export function buildVirshPoolDestroyArgs(pool: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'pool-destroy', assertSafeName(pool, 'pool')];
}

/** `virsh pool-undefine NAME` (forgets a pool's definition; its files stay). */
export function buildVirshPoolUndefineArgs(pool: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'pool-undefine', assertSafeName(pool, 'pool')];
}

/** `virsh vol-create-as --pool P --name V --capacity BYTES --format raw|qcow2`. */
export function buildVirshVolCreateAsArgs(pool: string, volume: string, capacityBytes: number, options: ConnectOptions & { readonly format?: 'raw' | 'qcow2' } = {}): string[] {
  if (!Number.isSafeInteger(capacityBytes) || capacityBytes <= 0) {
    throw new InvalidArgumentError(`Expected a positive volume capacity in bytes, got ${capacityBytes}`);
  }
  return [
    ...connectArgs(options.connect),
    'vol-create-as', '--pool', assertSafeName(pool, 'pool'), '--name', assertSafeName(volume, 'volume'),
    '--capacity', String(capacityBytes), '--format', options.format === 'qcow2' ? 'qcow2' : 'raw',
  ];
}

/** `virsh vol-upload --pool P --vol V --file FILE --sparse` (holes stay holes on the remote side). */
export function buildVirshVolUploadArgs(pool: string, volume: string, file: string, options: ConnectOptions = {}): string[] {
  return [
    ...connectArgs(options.connect),
    'vol-upload', '--pool', assertSafeName(pool, 'pool'), '--vol', assertSafeName(volume, 'volume'),
    '--file', assertSafePath(file, 'file'), '--sparse',
  ];
}

/** `virsh vol-delete --pool P --vol V`. */
export function buildVirshVolDeleteArgs(pool: string, volume: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'vol-delete', '--pool', assertSafeName(pool, 'pool'), '--vol', assertSafeName(volume, 'volume')];
}

/** `virsh vol-delete PATH` (a volume addressed by its path, e.g. a disk of a domain). */
export function buildVirshVolDeletePathArgs(path: string, options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'vol-delete', assertSafePath(path, 'volume path')];
}

/**
 * A command line for humans to read or paste (POSIX single-quoting where needed). Display only:
 * diskwright never runs commands through a shell.
 */
export function formatCommandLine(program: string, argv: readonly string[]): string {
  const quote = (word: string): string => (/^[A-Za-z0-9_.,:/=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);
  return [program, ...argv].map(quote).join(' ');
}

/** `virsh domcapabilities --virttype kvm`: fails when libvirt cannot run KVM guests. */
export function buildVirshKvmCapabilitiesArgs(options: ConnectOptions = {}): string[] {
  return [...connectArgs(options.connect), 'domcapabilities', '--virttype', 'kvm'];
}

/** `diskwright instance destroy HOST [--connect URI]`, as hints print it. */
export function destroyCommand(host: string, options: ConnectOptions = {}): string {
  return formatCommandLine('diskwright', ['instance', 'destroy', host, ...connectArgs(options.connect)]);
}
