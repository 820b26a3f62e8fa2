import { InvalidArgumentError } from '../errors.js';

/** A parsed IPv4 address: the dotted text and its 32-bit value. */
export interface IPv4 {
  readonly text: string;
  readonly value: number;
}

/** A subnet described by a contiguous netmask. */
export interface Subnet {
  readonly network: number;
  readonly broadcast: number;
  readonly prefix: number;
  readonly mask: number;
}

// One octet: 0–255 without leading zeros (so `010` cannot be read as octal 8 by other tools).
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const DOTTED_QUAD = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** Longest IPv4 text we even look at (`255.255.255.255`); longer input is rejected before the regex. */
const MAX_IPV4_TEXT = 15;

/** Formats a 32-bit value as a dotted quad. */
export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.');
}

/** A short, printable rendering of user input for error messages (no control characters, bounded). */
export function showValue(text: string): string {
  const clean = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  return clean;
}

/**
 * Parses a strict dotted-quad IPv4 address (`192.168.1.197`): exactly four decimal octets 0–255,
 * no leading zeros, no hex/octal/short forms, no whitespace.
 */
export function parseIPv4(text: string, option = 'address'): IPv4 {
  if (typeof text !== 'string' || text.length > MAX_IPV4_TEXT || !DOTTED_QUAD.test(text)) {
    throw new InvalidArgumentError(
      `Expected \`${option}\` to be an IPv4 address like 192.168.1.197 (four decimal octets 0-255, no leading zeros), got ${showValue(String(text))}`,
    );
  }
  const value = text.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0) >>> 0;
  return { text, value };
}

/** Contiguous masks by prefix length (index = prefix). */
const MASKS: readonly number[] = Array.from({ length: 33 }, (_, prefix) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0));

/** The dotted mask for a prefix length 0–32. */
export function prefixToNetmask(prefix: number): string {
  const mask = MASKS[prefix];
  if (mask === undefined) throw new InvalidArgumentError(`Expected a prefix length 0-32, got ${prefix}`);
  return formatIPv4(mask);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The contiguous mask whose dotted text is closest to `text` (typo suggestions). */
export function nearestNetmask(text: string): string {
  let best = '';
  let bestDistance = Infinity;
  // Longer prefixes first: on a tie the narrower, more common LAN mask wins.
  for (let prefix = 32; prefix >= 1; prefix--) {
    const candidate = prefixToNetmask(prefix);
    const distance = editDistance(text, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Validates a netmask: a dotted quad whose one-bits are contiguous from the top
 * (255.255.255.0, 255.255.240.0 …). Returns the prefix length. `255.255.225.0` — the reference
 * article's typo — is rejected with the reason and the likely intended mask.
 */
export function validateNetmask(text: string, option = 'netmask'): { mask: number; prefix: number; text: string } {
  const { value } = parseIPv4(text, option);
  const inverted = ~value >>> 0;
  if ((inverted & (inverted + 1)) !== 0) {
    throw new InvalidArgumentError(
      `netmask ${text} is not contiguous: bits after the first 0 must be 0 (did you mean ${nearestNetmask(text)}?)`,
      { actual: text, expected: nearestNetmask(text) },
    );
  }
  const prefix = 32 - Math.log2(inverted + 1);
  return { mask: value, prefix, text };
}

/** The subnet of `address` under a validated mask. */
export function subnetOf(address: number, prefix: number): Subnet {
  const mask = MASKS[prefix]!;
  const network = (address & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  return { network, broadcast, prefix, mask };
}

/**
 * The default gateway of a subnet: its first host address (network + 1), the usual router
 * address (`192.168.1.1` for the article's `192.168.1.197/24`, `10.0.0.1` for `10.0.0.5/24`).
 */
export function firstHost(subnet: Subnet): number {
  return (subnet.network + 1) >>> 0;
}

/** Why an address cannot be a unicast host address at all, or undefined when it can. */
export function nonHostReason(value: number): string | undefined {
  const first = value >>> 24;
  if (first === 0) return 'is in 0.0.0.0/8 ("this network")';
  if (first === 127) return 'is a loopback address (127.0.0.0/8)';
  if (first >= 224 && first <= 239) return 'is a multicast address (224.0.0.0/4)';
  if (first >= 240) return 'is reserved or broadcast (240.0.0.0/4)';
  if (first === 169 && ((value >>> 16) & 0xff) === 254) return 'is a link-local address (169.254.0.0/16)';
  return undefined;
}

/** Reverse-DNS name of an address: `197.1.168.192.in-addr.arpa`. */
export function reversePointerName(value: number): string {
  return `${value & 0xff}.${(value >>> 8) & 0xff}.${(value >>> 16) & 0xff}.${value >>> 24}.in-addr.arpa`;
}
