import { InvalidArgumentError } from '../errors.js';
import { parseIPv4, reversePointerName } from './ipv4.js';
import { fqdnOf } from './names.js';

/** One host to register in DNS. */
export interface DnsRecord {
  readonly host: string;
  readonly domain: string;
  readonly ip: string;
}

export interface NsupdateOptions {
  /** `server` line (the DNS primary to send to); without it nsupdate uses the SOA's primary. */
  readonly server?: string;
  /** Record TTL in seconds (default 3600). */
  readonly ttl?: number;
}

/**
 * An `nsupdate` script registering A and PTR records (the article's conclusion). Each update
 * is followed by `send` because the forward and reverse names live in different zones; existing
 * records of the same name and type are deleted first so a re-run replaces them.
 * Feed it with `nsupdate -k KEYFILE SCRIPT`.
 */
export function buildNsupdateScript(records: readonly DnsRecord[], options: NsupdateOptions = {}): string {
  const ttl = options.ttl ?? 3600;
  if (!Number.isSafeInteger(ttl) || ttl < 0 || ttl > 2147483647) {
    throw new InvalidArgumentError(`Expected the TTL to be 0-2147483647 seconds, got ${ttl}`);
  }
  const lines: string[] = [];
  if (options.server !== undefined) lines.push(`server ${parseIPv4(options.server, 'nsupdate server').text}`);
  for (const record of records) {
    const fqdn = fqdnOf(record.host, record.domain);
    const ip = parseIPv4(record.ip, 'ip');
    const ptr = reversePointerName(ip.value);
    lines.push(
      `update delete ${fqdn}. A`,
      `update add ${fqdn}. ${ttl} A ${ip.text}`,
      'send',
      `update delete ${ptr}. PTR`,
      `update add ${ptr}. ${ttl} PTR ${fqdn}.`,
      'send',
    );
  }
  return `${lines.join('\n')}\n`;
}
