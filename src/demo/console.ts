import { DiskwrightError } from '../errors.js';

/** What the demo guest printed on its serial console (DISKWRIGHT-* marker lines). */
export interface GuestReport {
  /** The root filesystem's /sbin/init ran. */
  readonly booted: boolean;
  /** The report ran to its end (DISKWRIGHT-DONE). */
  readonly done: boolean;
  readonly hostname: string | undefined;
  /** The first `address …` line of /etc/network/interfaces. */
  readonly interfacesAddress: string | undefined;
  readonly nameserver: string | undefined;
  /** IPv4 addresses `ip -4 addr show eth0` listed, as `a.b.c.d/prefix`. */
  readonly eth0Addresses: readonly string[];
  /** eth0's interface flags from the same listing (`UP`, `LOWER_UP`, `NO-CARRIER`, …). */
  readonly eth0Flags: readonly string[];
  readonly ifupOutput: readonly string[];
  readonly errors: readonly string[];
  /** Every marker line, for display. */
  readonly lines: readonly string[];
}

const MARKER = /^(DISKWRIGHT-[A-Z0-9-]+):\s?(.*)$/;

/** Parses a serial console log; unknown text (kernel messages) is ignored. */
export function parseGuestConsole(log: string): GuestReport {
  let booted = false;
  let done = false;
  let hostname: string | undefined;
  let interfacesAddress: string | undefined;
  let nameserver: string | undefined;
  const eth0Addresses: string[] = [];
  let eth0Flags: string[] = [];
  const ifupOutput: string[] = [];
  const errors: string[] = [];
  const lines: string[] = [];
  for (const raw of log.split('\n')) {
    const line = raw.replace(/\r/g, '').trimEnd();
    const at = line.indexOf('DISKWRIGHT-');
    if (at < 0) continue;
    if (line.slice(at) === 'DISKWRIGHT-DONE') {
      done = true;
      lines.push('DISKWRIGHT-DONE');
      continue;
    }
    const match = MARKER.exec(line.slice(at));
    if (!match) continue;
    const [, key, value = ''] = match;
    lines.push(line.slice(at));
    switch (key) {
      case 'DISKWRIGHT-BOOT':
        booted = true;
        break;
      case 'DISKWRIGHT-HOSTNAME':
        hostname ??= value.trim();
        break;
      case 'DISKWRIGHT-INTERFACES-ADDRESS':
        interfacesAddress ??= value.trim().replace(/^address\s+/, '');
        break;
      case 'DISKWRIGHT-RESOLV':
        nameserver ??= value.trim().replace(/^nameserver\s+/, '');
        break;
      case 'DISKWRIGHT-IP': {
        const inet = /^\s*inet\s+(\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2})\b/.exec(value);
        if (inet) eth0Addresses.push(inet[1]!);
        const link = /^\d+:\s+eth0:\s+<([^>]*)>/.exec(value);
        if (link) eth0Flags = link[1]!.split(',').filter(Boolean);
        break;
      }
      case 'DISKWRIGHT-IFUP':
        ifupOutput.push(value);
        break;
      case 'DISKWRIGHT-INITRAMFS-ERROR':
        errors.push(value);
        break;
      default:
        break;
    }
  }
  return { booted, done, hostname, interfacesAddress, nameserver, eth0Addresses, eth0Flags, ifupOutput, errors, lines };
}

export interface ExpectedIdentity {
  /** Accepted /etc/hostname values (e.g. HOST and HOST.DOMAIN). */
  readonly hostnames: readonly string[];
  /** The instance's IPv4 address (without prefix). */
  readonly address: string;
  /** Its prefix length, when the netmask should be checked too. */
  readonly prefix?: number;
}

/**
 * Checks that the guest booted, printed one of the expected hostnames and brought eth0 up (UP flag)
 * with the expected address; throws an `E_BOOT` DiskwrightError listing every mismatch otherwise.
 */
export function verifyGuestIdentity(report: GuestReport, expected: ExpectedIdentity): void {
  const problems: string[] = [];
  if (report.errors.length > 0) problems.push(`initramfs failed: ${report.errors.join('; ')}`);
  if (!report.booted) problems.push('the root filesystem\'s /sbin/init never ran');
  if (report.hostname === undefined) problems.push('no hostname was printed');
  else if (!expected.hostnames.includes(report.hostname)) {
    problems.push(`hostname is \`${report.hostname}\`, expected ${expected.hostnames.map((h) => `\`${h}\``).join(' or ')}`);
  }
  const want = expected.prefix === undefined ? undefined : `${expected.address}/${expected.prefix}`;
  const hasAddress = report.eth0Addresses.some((a) => (want ? a === want : a.split('/')[0] === expected.address));
  if (!hasAddress) {
    const got = report.eth0Addresses.length > 0 ? report.eth0Addresses.join(', ') : 'no IPv4 address';
    problems.push(`eth0 has ${got}, expected ${want ?? expected.address}`);
  }
  if (hasAddress && !report.eth0Flags.includes('UP')) problems.push(`eth0 is not up (flags ${report.eth0Flags.join(',') || 'none'})`);
  if (!report.done) problems.push('the guest report did not finish');
  if (problems.length > 0) {
    throw new DiskwrightError('E_BOOT', `the booted guest does not show the instance's identity: ${problems.join('; ')}`, {
      expected,
      actual: { hostname: report.hostname, eth0: report.eth0Addresses },
      hint: 'check the rendered /etc/hostname and /etc/network/interfaces with `diskwright fs cat`',
    });
  }
}
