import { isAbsolute, join, resolve } from 'node:path';
import { parseSize } from '../bytes/size.js';
import { DiskwrightError, InvalidArgumentError } from '../errors.js';
import { assertCpuset, assertSafeBridge, assertSafeName, assertSafePath, assertSafeUri, parseKernelArgs, type NetworkSpec } from '../virt/index.js';
import { firstHost, formatIPv4, nonHostReason, parseIPv4, showValue, subnetOf, validateNetmask, type IPv4 } from './ipv4.js';
import { validateMac } from './mac.js';
import { fqdnOf, validateDomain, validateHostname } from './names.js';
import { TIMEZONE, USER_NAME, type CustomizationRequest } from './customize.js';
import { ARTICLE_DEFAULTS, DEFAULT_TEMPLATE_NAME, type InstanceRequest } from './request.js';

/** Upper bounds that keep a typo from asking libvirt for absurd machines. */
export const MAX_RAM_MIB = 16 * 1024 * 1024;
export const MAX_VCPUS = 4096;
/** Largest instance disk (16 TiB — ext4 with 4 KiB blocks and no 64bit feature tops out there). */
export const MAX_DISK_BYTES = 16 * 1024 ** 4;

/** How the instance disk is stored (`--format raw|qcow2`, `--standalone`). */
export type DiskKind = 'raw' | 'thin' | 'standalone';

/** The instance disk's file name in the images directory. */
export function instanceDiskName(host: string, kind: DiskKind): string {
  return kind === 'raw' ? `${host}-disk0` : `${host}-disk0.qcow2`;
}

/** `--format` / `--standalone` → the disk kind (pure; names the option on error). */
export function parseDiskKind(format: string | undefined, standalone: boolean | string | undefined): DiskKind {
  const value = format ?? 'raw';
  if (value !== 'raw' && value !== 'qcow2') throw new InvalidArgumentError(`Expected \`format\` to be raw or qcow2, got ${showValue(String(value))}`);
  let full: boolean;
  if (standalone === undefined || standalone === false || standalone === 'false') full = false;
  else if (standalone === true || standalone === 'true') full = true;
  else throw new InvalidArgumentError(`Expected \`standalone\` to be true or false, got ${showValue(String(standalone))}`);
  if (full && value !== 'qcow2') {
    throw new InvalidArgumentError('--standalone needs --format qcow2 (a raw instance disk never has a backing file)', { hint: 'add --format qcow2, or drop --standalone' });
  }
  return value === 'raw' ? 'raw' : full ? 'standalone' : 'thin';
}

/** A fully validated instance description: every field is safe to put into argv or kernel args. */
export interface InstanceSpec {
  readonly host: string;
  readonly domain: string;
  readonly fqdn: string;
  readonly ip: string;
  readonly netmask: string;
  readonly prefix: number;
  readonly gateway: string;
  readonly nameserver: string;
  readonly diskBytes: number;
  readonly ramMiB: number;
  readonly vcpus: number;
  readonly network: NetworkSpec;
  readonly imagesDir: string;
  readonly template: string;
  /** `IMAGES_DIR/HOST-disk0` (raw) or `IMAGES_DIR/HOST-disk0.qcow2`. */
  readonly diskPath: string;
  /**
   * The instance disk: `raw` (a sparse copy), `thin` (a qcow2 overlay whose backing file is the
   * raw template) or `standalone` (a full qcow2 with no backing file).
   */
  readonly diskKind: DiskKind;
  readonly kernel?: string;
  readonly initrd?: string;
  readonly connect?: string;
  readonly virtType?: string;
  readonly os?: string;
  readonly cpu: string;
  readonly pool?: string;
  readonly mac?: string;
  readonly extraKernelArgs: readonly string[];
  readonly serialLog?: string;
  readonly graphics: 'vnc' | 'none';
  /** virt-install `--cpuset`: `auto` (article), `none` (flag omitted), `N` or `N-M`. */
  readonly cpuset: string;
  /** Host files and names of the per-instance customization (contents checked while planning). */
  readonly customize: CustomizationRequest;
  /** A fresh filesystem UUID for this instance (fstab's FSUUID-TMPL follows). */
  readonly newFsUuid: boolean;
}

function positiveInteger(value: string | number, option: string, max: number): number {
  const text = String(value);
  if (!/^[0-9]{1,12}$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a whole number from 1 to ${max}, got ${showValue(text)}`);
  }
  return Number(text);
}

function hostAddress(text: string, option: string): IPv4 {
  const address = parseIPv4(text, option);
  const reason = nonHostReason(address.value);
  if (reason) throw new InvalidArgumentError(`\`${option}\` ${text} ${reason}; it cannot be a host address`);
  return address;
}

function parseNetwork(request: InstanceRequest): NetworkSpec {
  const network = request.network;
  if (network === undefined || network === '') return { kind: 'bridge', name: assertSafeBridge(request.bridge ?? ARTICLE_DEFAULTS.bridge) };
  if (network === 'user') return { kind: 'user' };
  const match = /^(bridge|network)=(.*)$/.exec(network);
  if (!match) throw new InvalidArgumentError(`Expected \`network\` to be bridge=NAME, network=NAME or user, got ${showValue(network)}`);
  return match[1] === 'bridge'
    ? { kind: 'bridge', name: assertSafeBridge(match[2]!, 'network bridge') }
    : { kind: 'network', name: assertSafeName(match[2]!, 'network name') };
}

function absolutePath(path: string, option: string, cwd: string): string {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError(`Expected \`${option}\` to be a path, got ${showValue(String(path))}`);
  return assertSafePath(isAbsolute(path) ? resolve(path) : resolve(cwd, path), option);
}

/**
 * Validates a request completely before any work: addresses and the subnet they form, names,
 * sizes, counts and every path or name that will reach virt-install/virsh argv or the kernel
 * command line. Missing values take the article's defaults. Pure: touches no file.
 */
export function validateInstanceRequest(request: InstanceRequest, options: { cwd?: string } = {}): InstanceSpec {
  const cwd = options.cwd ?? process.cwd();
  if (request.ip === undefined) throw new InvalidArgumentError('missing the instance IP address', { hint: 'usage: diskwright instance create IP HOST' });
  if (request.host === undefined) throw new InvalidArgumentError('missing the instance host name', { hint: 'usage: diskwright instance create IP HOST' });
  // Every independent check runs, so the user sees all problems at once (one is rethrown as is).
  const problems: DiskwrightError[] = [];
  const attempt = <T>(check: () => T): T | undefined => {
    try {
      return check();
    } catch (error) {
      if (!(error instanceof DiskwrightError) || error.code !== 'E_INVALID_ARGUMENT') throw error;
      problems.push(error);
      return undefined;
    }
  };
  const host = attempt(() => validateHostname(request.host!, 'host'));
  const domain = attempt(() => validateDomain(request.domain ?? ARTICLE_DEFAULTS.domain, 'domain'));
  const fqdn = host !== undefined && domain !== undefined ? attempt(() => fqdnOf(host, domain)) : undefined;

  const ip = attempt(() => hostAddress(request.ip!, 'ip'));
  const mask = attempt(() => {
    const parsed = validateNetmask(request.netmask ?? ARTICLE_DEFAULTS.netmask, 'netmask');
    if (parsed.prefix < 8 || parsed.prefix > 30) {
      throw new InvalidArgumentError(`netmask ${parsed.text} (/${parsed.prefix}) leaves no room for a gateway and a host: use a prefix from /8 to /30`);
    }
    return parsed;
  });
  const subnet = ip && mask ? subnetOf(ip.value, mask.prefix) : undefined;
  const cidr = subnet && mask ? `${formatIPv4(subnet.network)}/${mask.prefix}` : '';
  if (ip && subnet) {
    attempt(() => {
      if (ip.value === subnet.network) throw new InvalidArgumentError(`ip ${ip.text} is the network address of ${cidr}; pick a host address`);
      if (ip.value === subnet.broadcast) throw new InvalidArgumentError(`ip ${ip.text} is the broadcast address of ${cidr}; pick a host address`);
    });
  }

  // No --gateway: the first host of the instance's subnet (192.168.1.1 for the article's /24).
  const gateway =
    request.gateway !== undefined
      ? attempt(() => hostAddress(request.gateway!, 'gateway'))
      : subnet
        ? { text: formatIPv4(firstHost(subnet)), value: firstHost(subnet) }
        : undefined;
  if (gateway && ip && subnet && mask) {
    attempt(() => {
      const given = request.gateway === undefined ? `the default gateway ${gateway.text} (the first host of ${cidr}; no --gateway given)` : `gateway ${gateway.text}`;
      if (subnetOf(gateway.value, mask.prefix).network !== subnet.network) {
        throw new InvalidArgumentError(`${given} is outside the instance's subnet ${cidr}`, {
          hint: 'pass --gateway inside the subnet or fix --netmask',
        });
      }
      if (gateway.value === subnet.network || gateway.value === subnet.broadcast) {
        throw new InvalidArgumentError(`${given} is the ${gateway.value === subnet.network ? 'network' : 'broadcast'} address of ${cidr}`);
      }
      if (gateway.value === ip.value) {
        throw new InvalidArgumentError(`${given} is the instance's own address`, { hint: 'pass --gateway with the router\'s address' });
      }
    });
  }

  const nameserver = attempt(() => hostAddress(request.nameserver ?? ARTICLE_DEFAULTS.nameserver, 'nameserver'));
  if (nameserver && ip && subnet && mask) {
    attempt(() => {
      if (nameserver.value === ip.value) throw new InvalidArgumentError(`nameserver ${nameserver.text} is the instance's own address`);
      if (subnetOf(nameserver.value, mask.prefix).network === subnet.network && (nameserver.value === subnet.network || nameserver.value === subnet.broadcast)) {
        throw new InvalidArgumentError(`nameserver ${nameserver.text} is the network or broadcast address of ${cidr}`);
      }
    });
  }

  const diskBytes = attempt(() => {
    const bytes = typeof request.disk === 'number' ? request.disk : parseSize(String(request.disk ?? ARTICLE_DEFAULTS.disk), 'disk');
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % 512 !== 0 || bytes > MAX_DISK_BYTES) {
      throw new InvalidArgumentError(`Expected \`disk\` to be a positive multiple of 512 bytes up to 16 TiB, got ${showValue(String(request.disk))}`);
    }
    return bytes;
  });
  const ramMiB = attempt(() => positiveInteger(request.ram ?? ARTICLE_DEFAULTS.ram, 'ram', MAX_RAM_MIB));
  const vcpus = attempt(() => positiveInteger(request.cpus ?? ARTICLE_DEFAULTS.cpus, 'cpus', MAX_VCPUS));
  const network = attempt(() => parseNetwork(request));

  const imagesDir = attempt(() => absolutePath(request.imagesDir ?? ARTICLE_DEFAULTS.imagesDir, 'images-dir', cwd));
  const template = attempt(() => absolutePath(request.template ?? join(imagesDir ?? '/', DEFAULT_TEMPLATE_NAME), 'template', cwd));
  const diskKind = attempt(() => parseDiskKind(request.format, request.standalone));
  attempt(() => {
    // A thin overlay names its backing file by a path on this host; a remote pool cannot follow it.
    if (diskKind === 'thin' && request.pool !== undefined) {
      throw new InvalidArgumentError('--pool uploads the disk to the libvirt host, but a thin qcow2 overlay needs its template beside it', {
        hint: 'add --standalone (a full qcow2 is uploaded), or use a raw disk',
      });
    }
  });
  const diskPath =
    imagesDir !== undefined && host !== undefined && diskKind !== undefined ? attempt(() => assertSafePath(join(imagesDir, instanceDiskName(host, diskKind)), 'disk path')) : undefined;
  attempt(() => {
    if (request.initrd !== undefined && request.kernel === undefined) {
      throw new InvalidArgumentError('--initrd needs --kernel (otherwise the template\'s recorded kernel and initrd are used together)');
    }
  });
  attempt(() => {
    if (request.sshUser !== undefined && request.sshKey === undefined) throw new InvalidArgumentError('--ssh-user needs --ssh-key (the key to install for that user)');
  });
  attempt(() => {
    if (request.sshUser !== undefined && !USER_NAME.test(request.sshUser)) {
      throw new InvalidArgumentError(`Expected \`ssh-user\` to be a user name (lower-case letters, digits, _ and -), got ${showValue(request.sshUser)}`);
    }
  });
  attempt(() => {
    if (request.timezone !== undefined && (!TIMEZONE.test(request.timezone) || request.timezone.split('/').some((part) => part === '..' || part === '.'))) {
      throw new InvalidArgumentError(`Expected \`timezone\` to be a tz database name such as Europe/Berlin, got ${showValue(request.timezone)}`);
    }
  });
  const fsUuid = request.fsUuid ?? 'keep';
  attempt(() => {
    if (fsUuid !== 'keep' && fsUuid !== 'new') throw new InvalidArgumentError(`Expected \`fs-uuid\` to be keep or new, got ${showValue(fsUuid)}`);
  });
  const customize = attempt(
    (): CustomizationRequest => ({
      ...(request.sshKey !== undefined ? { sshKeyFile: absolutePath(request.sshKey, 'ssh-key', cwd) } : {}),
      ...(request.sshUser !== undefined ? { sshUser: request.sshUser } : {}),
      ...(request.rootPasswordFile !== undefined ? { rootPasswordFile: absolutePath(request.rootPasswordFile, 'root-password-file', cwd) } : {}),
      ...(request.timezone !== undefined ? { timezone: request.timezone } : {}),
      ...(request.firstboot !== undefined ? { firstbootFile: absolutePath(request.firstboot, 'firstboot', cwd) } : {}),
    }),
  );
  const graphics = request.graphics ?? 'vnc';
  attempt(() => {
    if (graphics !== 'vnc' && graphics !== 'none') throw new InvalidArgumentError(`Expected \`graphics\` to be vnc or none, got ${showValue(graphics)}`);
  });
  const kernel = request.kernel !== undefined ? attempt(() => absolutePath(request.kernel!, 'kernel', cwd)) : undefined;
  const initrd = request.initrd !== undefined ? attempt(() => absolutePath(request.initrd!, 'initrd', cwd)) : undefined;
  const connect = request.connect !== undefined ? attempt(() => assertSafeUri(request.connect!)) : undefined;
  const virtType = request.virtType !== undefined ? attempt(() => assertSafeName(request.virtType!, 'virt-type')) : undefined;
  const os = request.os !== undefined ? attempt(() => assertSafeName(request.os!, 'os')) : undefined;
  const cpu = attempt(() => assertSafeName(request.cpu ?? 'host', 'cpu'));
  const pool = request.pool !== undefined ? attempt(() => assertSafeName(request.pool!, 'pool')) : undefined;
  const mac = request.mac !== undefined ? attempt(() => validateMac(request.mac!)) : undefined;
  const extraKernelArgs = request.kernelArgs === undefined ? [] : attempt(() => parseKernelArgs(request.kernelArgs!));
  const serialLog = request.serialLog !== undefined ? attempt(() => absolutePath(request.serialLog!, 'serial-log', cwd)) : undefined;
  const cpuset = attempt(() => assertCpuset(request.cpuset ?? 'auto'));

  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) {
    throw new InvalidArgumentError(`${problems.length} problems with instance ${request.host}:\n  - ${problems.map((p) => p.message).join('\n  - ')}`, {
      hint: 'fix them all and run again; nothing was written',
      cause: problems[0],
    });
  }
  return {
    host: host!,
    domain: domain!,
    fqdn: fqdn!,
    ip: ip!.text,
    netmask: mask!.text,
    prefix: mask!.prefix,
    gateway: gateway!.text,
    nameserver: nameserver!.text,
    diskBytes: diskBytes!,
    ramMiB: ramMiB!,
    vcpus: vcpus!,
    network: network!,
    imagesDir: imagesDir!,
    template: template!,
    diskPath: diskPath!,
    diskKind: diskKind!,
    ...(kernel !== undefined ? { kernel } : {}),
    ...(initrd !== undefined ? { initrd } : {}),
    ...(connect !== undefined ? { connect } : {}),
    ...(virtType !== undefined ? { virtType } : {}),
    ...(os !== undefined ? { os } : {}),
    cpu: cpu!,
    ...(pool !== undefined ? { pool } : {}),
    ...(mac !== undefined ? { mac } : {}),
    extraKernelArgs: extraKernelArgs!,
    ...(serialLog !== undefined ? { serialLog } : {}),
    graphics: graphics as InstanceSpec['graphics'],
    cpuset: cpuset!,
    customize: customize!,
    newFsUuid: fsUuid === 'new',
  };
}

/**
 * The guest kernel command line, the article's tokens in the article's order; extra user tokens
 * are appended.
 */
export function buildKernelArgs(spec: Pick<InstanceSpec, 'ip' | 'fqdn' | 'gateway' | 'nameserver' | 'netmask' | 'extraKernelArgs'>): string[] {
  return [
    'root=/dev/vda',
    'console=ttyS0',
    '_device=eth0',
    `_ip=${spec.ip}`,
    `_hostname=${spec.fqdn}`,
    `_gateway=${spec.gateway}`,
    `_dns1=${spec.nameserver}`,
    `_netmask=${spec.netmask}`,
    ...spec.extraKernelArgs,
  ];
}

/** The values that replace the template placeholders (FSUUID-TMPL comes from the plan). */
export function placeholderValues(spec: Pick<InstanceSpec, 'ip' | 'netmask' | 'gateway' | 'fqdn' | 'nameserver' | 'host'>): Record<string, string> {
  return {
    'SHORTNAME-TMPL': spec.host,
    'ADDRESS-TMPL': spec.ip,
    'NETMASK-TMPL': spec.netmask,
    'GATEWAY-TMPL': spec.gateway,
    'HOSTNAME-TMPL': spec.fqdn,
    'NAMESERVER-TMPL': spec.nameserver,
  };
}
