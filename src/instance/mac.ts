import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { showValue } from './ipv4.js';

/** QEMU/KVM's locally administered OUI: 0x52 has the local bit (0x02) set and the multicast bit (0x01) clear. */
export const MAC_PREFIX = '52:54:00';

/** How many random draws before giving up on finding a MAC not already used (2^24 space). */
const MAX_MAC_ATTEMPTS = 64;

const MAC_TEXT = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/**
 * A random MAC `52:54:00:xx:xx:xx` from the crypto RNG (the article's `openssl rand -hex 6` can
 * yield a multicast address), distinct from every MAC in `taken` (compared case-insensitively).
 */
export function randomMac(taken: Iterable<string> = [], random: (n: number) => Uint8Array = randomBytes): string {
  const used = new Set([...taken].map((m) => m.toLowerCase()));
  for (let attempt = 0; attempt < MAX_MAC_ATTEMPTS; attempt++) {
    const bytes = random(3);
    const mac = `${MAC_PREFIX}:${[...bytes.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    if (!used.has(mac)) return mac;
  }
  throw new InvalidArgumentError(`could not find an unused MAC address in ${MAC_PREFIX}:xx:xx:xx after ${MAX_MAC_ATTEMPTS} tries`);
}

/**
 * Validates a user-given MAC: six hex pairs with colons, unicast (first octet's bit 0 clear).
 * Returns it lower-cased.
 */
export function validateMac(text: string, option = 'mac'): string {
  const mac = typeof text === 'string' ? text.toLowerCase() : '';
  if (!MAC_TEXT.test(mac)) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a MAC address like 52:54:00:12:34:56, got ${showValue(String(text))}`);
  }
  const first = Number.parseInt(mac.slice(0, 2), 16);
  if ((first & 1) === 1) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a unicast MAC (first octet even), got ${mac}: it is a multicast address`);
  }
  return mac;
}
