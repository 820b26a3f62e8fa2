import { InvalidArgumentError } from '../errors.js';
import { showValue } from './ipv4.js';

/** RFC 1123 §2.1 / RFC 1035: a label is at most 63 octets, a full name at most 253 (without the dot). */
export const MAX_LABEL_LENGTH = 63;
export const MAX_FQDN_LENGTH = 253;

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

function checkLabel(label: string, option: string, whole: string): void {
  if (label.length === 0) {
    throw new InvalidArgumentError(`Expected \`${option}\` to have no empty labels (no leading, trailing or double dots), got ${showValue(whole)}`);
  }
  if (label.length > MAX_LABEL_LENGTH) {
    throw new InvalidArgumentError(`Expected every label of \`${option}\` to be at most ${MAX_LABEL_LENGTH} characters, got ${label.length} in ${showValue(whole)}`);
  }
  if (!LABEL.test(label)) {
    throw new InvalidArgumentError(
      `Expected \`${option}\` to use only letters a-z, digits and inner hyphens (RFC 1123), got ${showValue(whole)}`,
    );
  }
}

/**
 * Validates a short host name: one RFC 1123 label (`jgoulah`). It becomes the libvirt domain
 * name and the disk file name, so dots, slashes and a leading `-` are refused.
 */
export function validateHostname(text: string, option = 'host'): string {
  if (typeof text !== 'string' || text.length > MAX_FQDN_LENGTH) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a host name of at most ${MAX_LABEL_LENGTH} characters, got ${showValue(String(text))}`);
  }
  if (text.includes('.')) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a short host name without dots (the domain comes from --domain), got ${showValue(text)}`);
  }
  checkLabel(text, option, text);
  return text;
}

/** Validates a DNS domain (`linux.bogus`): RFC 1123 labels, and a top-level label that is not all digits. */
export function validateDomain(text: string, option = 'domain'): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_FQDN_LENGTH) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a domain of 1-${MAX_FQDN_LENGTH} characters, got ${showValue(String(text))}`);
  }
  const labels = text.split('.');
  for (const label of labels) checkLabel(label, option, text);
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) {
    throw new InvalidArgumentError(`Expected the last label of \`${option}\` not to be all digits (it would look like an IP address), got ${showValue(text)}`);
  }
  return text;
}

/** HOST.DOMAIN, checked against the 253-character limit. */
export function fqdnOf(host: string, domain: string): string {
  const fqdn = `${validateHostname(host)}.${validateDomain(domain)}`;
  if (fqdn.length > MAX_FQDN_LENGTH) {
    throw new InvalidArgumentError(`The FQDN ${fqdn.slice(0, 40)}… is ${fqdn.length} characters; RFC 1123 allows at most ${MAX_FQDN_LENGTH}`);
  }
  return fqdn;
}
