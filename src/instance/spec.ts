import { isAbsolute, join, resolve } from 'node:path';
import { parseSize } from '../bytes/size.js';
import { InvalidArgumentError } from '../errors.js';
import { assertCpuset, assertSafeBridge, assertSafeName, assertSafePath, assertSafeUri, parseKernelArgs, type NetworkSpec } from '../virt/index.js';
import { formatIPv4, nonHostReason, parseIPv4, showValue, subnetOf, validateNetmask, type IPv4 } from './ipv4.js';
import { validateMac } from './mac.js';
import { fqdnOf, validateDomain, validateHostname } from './names.js';
import { ARTICLE_DEFAULTS, DEFAULT_TEMPLATE_NAME, type InstanceRequest } from './request.js';

/** Upper bounds that keep a typo from asking libvirt for absurd machines. */
export const MAX_RAM_MIB = 16 * 1024 * 1024;
export const MAX_VCPUS = 4096;
/** Largest instance disk (16 TiB — ext4 with 4 KiB blocks and no 64bit feature tops out there). */
export const MAX_DISK_BYTES = 16 * 1024 ** 4;

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
  /** `IMAGES_DIR/HOST-disk0`. */
  readonly diskPath: string;
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
  const host = validateHostname(request.host, 'host');
  const domain = validateDomain(request.domain ?? ARTICLE_DEFAULTS.domain, 'domain');
  const fqdn = fqdnOf(host, domain);

  const ip = hostAddress(request.ip, 'ip');
  const { prefix, text: netmask } = validateNetmask(request.netmask ?? ARTICLE_DEFAULTS.netmask, 'netmask');
  if (prefix < 8 || prefix > 30) {
    throw new InvalidArgumentError(`netmask ${netmask} (/${prefix}) leaves no room for a gateway and a host: use a prefix from /8 to /30`);
  }
  const subnet = subnetOf(ip.value, prefix);
  const cidr = `${formatIPv4(subnet.network)}/${prefix}`;
  if (ip.value === subnet.network) throw new InvalidArgumentError(`ip ${ip.text} is the network address of ${cidr}; pick a host address`);
  if (ip.value === subnet.broadcast) throw new InvalidArgumentError(`ip ${ip.text} is the broadcast address of ${cidr}; pick a host address`);

  const gateway = hostAddress(request.gateway ?? ARTICLE_DEFAULTS.gateway, 'gateway');
  if (subnetOf(gateway.value, prefix).network !== subnet.network) {
    throw new InvalidArgumentError(`gateway ${gateway.text} is outside the instance's subnet ${cidr}`, {
      hint: 'pass --gateway inside the subnet or fix --netmask',
    });
  }
  if (gateway.value === subnet.network || gateway.value === subnet.broadcast) {
    throw new InvalidArgumentError(`gateway ${gateway.text} is the ${gateway.value === subnet.network ? 'network' : 'broadcast'} address of ${cidr}`);
  }
  if (gateway.value === ip.value) throw new InvalidArgumentError(`gateway ${gateway.text} is the instance's own address`);

  const nameserver = hostAddress(request.nameserver ?? ARTICLE_DEFAULTS.nameserver, 'nameserver');
  if (nameserver.value === ip.value) throw new InvalidArgumentError(`nameserver ${nameserver.text} is the instance's own address`);
  if (subnetOf(nameserver.value, prefix).network === subnet.network && (nameserver.value === subnet.network || nameserver.value === subnet.broadcast)) {
    throw new InvalidArgumentError(`nameserver ${nameserver.text} is the network or broadcast address of ${cidr}`);
  }

  const diskBytes = typeof request.disk === 'number' ? request.disk : parseSize(String(request.disk ?? ARTICLE_DEFAULTS.disk), 'disk');
  if (!Number.isSafeInteger(diskBytes) || diskBytes <= 0 || diskBytes % 512 !== 0 || diskBytes > MAX_DISK_BYTES) {
    throw new InvalidArgumentError(`Expected \`disk\` to be a positive multiple of 512 bytes up to 16 TiB, got ${showValue(String(request.disk))}`);
  }
  const ramMiB = positiveInteger(request.ram ?? ARTICLE_DEFAULTS.ram, 'ram', MAX_RAM_MIB);
  const vcpus = positiveInteger(request.cpus ?? ARTICLE_DEFAULTS.cpus, 'cpus', MAX_VCPUS);
  const network = parseNetwork(request);

  const imagesDir = absolutePath(request.imagesDir ?? ARTICLE_DEFAULTS.imagesDir, 'images-dir', cwd);
  const template = absolutePath(request.template ?? join(imagesDir, DEFAULT_TEMPLATE_NAME), 'template', cwd);
  const diskPath = assertSafePath(join(imagesDir, `${host}-disk0`), 'disk path');
  if (request.initrd !== undefined && request.kernel === undefined) {
    throw new InvalidArgumentError('--initrd needs --kernel (otherwise the template\'s recorded kernel and initrd are used together)');
  }
  const graphics = request.graphics ?? 'vnc';
  if (graphics !== 'vnc' && graphics !== 'none') throw new InvalidArgumentError(`Expected \`graphics\` to be vnc or none, got ${showValue(graphics)}`);

  return {
    host,
    domain,
    fqdn,
    ip: ip.text,
    netmask,
    prefix,
    gateway: gateway.text,
    nameserver: nameserver.text,
    diskBytes,
    ramMiB,
    vcpus,
    network,
    imagesDir,
    template,
    diskPath,
    ...(request.kernel !== undefined ? { kernel: absolutePath(request.kernel, 'kernel', cwd) } : {}),
    ...(request.initrd !== undefined ? { initrd: absolutePath(request.initrd, 'initrd', cwd) } : {}),
    ...(request.connect !== undefined ? { connect: assertSafeUri(request.connect) } : {}),
    ...(request.virtType !== undefined ? { virtType: assertSafeName(request.virtType, 'virt-type') } : {}),
    ...(request.os !== undefined ? { os: assertSafeName(request.os, 'os') } : {}),
    cpu: assertSafeName(request.cpu ?? 'host', 'cpu'),
    ...(request.pool !== undefined ? { pool: assertSafeName(request.pool, 'pool') } : {}),
    ...(request.mac !== undefined ? { mac: validateMac(request.mac) } : {}),
    extraKernelArgs: request.kernelArgs === undefined ? [] : parseKernelArgs(request.kernelArgs),
    ...(request.serialLog !== undefined ? { serialLog: absolutePath(request.serialLog, 'serial-log', cwd) } : {}),
    graphics,
    cpuset: assertCpuset(request.cpuset ?? 'auto'),
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

/** The values that replace the template placeholders. */
export function placeholderValues(spec: Pick<InstanceSpec, 'ip' | 'netmask' | 'gateway' | 'fqdn' | 'nameserver'>): Record<string, string> {
  return {
    'ADDRESS-TMPL': spec.ip,
    'NETMASK-TMPL': spec.netmask,
    'GATEWAY-TMPL': spec.gateway,
    'HOSTNAME-TMPL': spec.fqdn,
    'NAMESERVER-TMPL': spec.nameserver,
  };
}
