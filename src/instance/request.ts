/**
 * What a user asks for, as strings/numbers straight from flags, a config file or a fleet entry.
 * {@link validateInstanceRequest} turns it into a checked {@link InstanceSpec}.
 */
export interface InstanceRequest {
  readonly ip?: string;
  readonly host?: string;
  readonly domain?: string;
  readonly gateway?: string;
  readonly netmask?: string;
  readonly nameserver?: string;
  /** Disk size: `10G`, `20480M`, bytes as a number. */
  readonly disk?: string | number;
  /** Memory in MiB. */
  readonly ram?: string | number;
  readonly cpus?: string | number;
  readonly bridge?: string;
  /** `bridge=BR`, `network=NAME` or `user` (overrides `bridge`). */
  readonly network?: string;
  readonly imagesDir?: string;
  readonly template?: string;
  readonly kernel?: string;
  readonly initrd?: string;
  readonly connect?: string;
  readonly virtType?: string;
  readonly os?: string;
  readonly cpu?: string;
  readonly pool?: string;
  readonly mac?: string;
  /** Extra guest kernel arguments, space-separated (`panic=-1 net.ifnames=0`). */
  readonly kernelArgs?: string;
  readonly serialLog?: string;
  readonly graphics?: string;
  /** `--cpuset`: `auto` (the article's; needs numad on the host), `none`, `N` or `N-M`. */
  readonly cpuset?: string;
  /** Public key file (authorized_keys lines) for root or {@link sshUser}. */
  readonly sshKey?: string;
  /** The user whose authorized_keys gets {@link sshKey} (default root). */
  readonly sshUser?: string;
  /** File whose first line is the root password (stored as a SHA-512 crypt hash; never on argv). */
  readonly rootPasswordFile?: string;
  /** tz database name, e.g. `Europe/Berlin`. */
  readonly timezone?: string;
  /** Script run once at the instance's first boot. */
  readonly firstboot?: string;
  /** `keep` (default: the template's filesystem UUID) or `new` (a fresh one, fstab follows). */
  readonly fsUuid?: string;
  /**
   * Instance disk format: `raw` (default: a sparse copy of the template) or `qcow2` (a thin
   * overlay whose backing file is the template; with {@link standalone}, a full qcow2).
   */
  readonly format?: string;
  /** With `format: qcow2`: write a full qcow2 with no backing file instead of a thin overlay. */
  readonly standalone?: boolean | string;
}

/** Keys a config file or a fleet's `defaults` may set (everything but the per-VM identity). */
export const CONFIG_KEYS = [
  'domain', 'gateway', 'netmask', 'nameserver', 'disk', 'ram', 'cpus', 'bridge', 'network', 'imagesDir',
  'template', 'kernel', 'initrd', 'connect', 'virtType', 'os', 'cpu', 'pool', 'kernelArgs', 'serialLog', 'graphics', 'cpuset',
  'sshKey', 'sshUser', 'rootPasswordFile', 'timezone', 'firstboot', 'fsUuid', 'format', 'standalone',
] as const satisfies readonly (keyof InstanceRequest)[];

/** Keys of one fleet entry: the config keys plus identity. */
export const REQUEST_KEYS = [...CONFIG_KEYS, 'ip', 'host', 'mac'] as const satisfies readonly (keyof InstanceRequest)[];

/**
 * The reference article's defaults (its netmask typo `255.255.225.0` corrected). The template
 * default is the article's `debian-tmpl` in the images directory. There is no fixed gateway: it
 * defaults to the first host of the instance's subnet (the article's 192.168.1.1 for its
 * 192.168.1.197/24), see `firstHost`.
 */
export const ARTICLE_DEFAULTS = {
  domain: 'linux.bogus',
  netmask: '255.255.255.0',
  nameserver: '192.168.1.101',
  disk: '10G',
  ram: 512,
  cpus: 1,
  bridge: 'br0',
  imagesDir: '/var/lib/libvirt/images',
} as const satisfies InstanceRequest;

/** Default template file name inside the images directory (the article's). */
export const DEFAULT_TEMPLATE_NAME = 'debian-tmpl';
