import { InvalidArgumentError } from '../errors.js';

/**
 * The article's placeholders: all-caps names ending in `-TMPL`, written into the template and
 * replaced per instance. Part of the public contract (the instance pipeline fills exactly these).
 */
export const PLACEHOLDERS = ['ADDRESS-TMPL', 'NETMASK-TMPL', 'GATEWAY-TMPL', 'HOSTNAME-TMPL', 'NAMESERVER-TMPL'] as const;

export type PlaceholderName = (typeof PLACEHOLDERS)[number];

/**
 * Placeholders whose value is computed from the five above, so the instance pipeline never has to
 * know them: netplan and NetworkManager need the address in CIDR form (`ADDRESS-TMPL/PREFIX-TMPL`),
 * and the prefix length follows from the netmask.
 */
export const DERIVED_PLACEHOLDERS = { 'PREFIX-TMPL': 'NETMASK-TMPL', 'SHORTNAME-TMPL': 'HOSTNAME-TMPL' } as const;

/**
 * Placeholders the instance pipeline fills from the template and its own choices rather than from
 * the network values: the root filesystem UUID in fstab (the template's, or a new one per instance).
 */
export const INSTANCE_PLACEHOLDERS = ['FSUUID-TMPL'] as const;

/** Every placeholder a template operation may write. */
export const ALL_PLACEHOLDERS = [...PLACEHOLDERS, ...Object.keys(DERIVED_PLACEHOLDERS), ...INSTANCE_PLACEHOLDERS] as readonly string[];

/** A placeholder token: upper-case letters/digits/underscore then `-TMPL`, not part of a longer word. */
const TOKEN = /(?<![A-Za-z0-9_])[A-Z][A-Z0-9_]*-TMPL(?![A-Za-z0-9_])/g;
const NAME = /^[A-Z][A-Z0-9_]*-TMPL$/;
/** Characters a value may never carry: they would let one value add lines/fields to a config file. */
const FORBIDDEN_IN_VALUE = /[\u0000-\u001f\u007f]/;

/**
 * The prefix length of a contiguous dotted-quad netmask (`255.255.255.0` → 24), or undefined when
 * the text is not one.
 */
export function netmaskToPrefix(netmask: string): number | undefined {
  const parts = netmask.split('.');
  if (parts.length !== 4) return undefined;
  let bits = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    bits = bits * 256 + octet;
  }
  // Contiguous: the inverted mask plus one is a power of two (or the mask is all ones).
  const inverted = 0xffffffff - bits;
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  return 32 - Math.log2(inverted + 1);
}

/**
 * Adds the derived placeholders (`PREFIX-TMPL` from `NETMASK-TMPL`, `SHORTNAME-TMPL` from
 * `HOSTNAME-TMPL`) to `values` unless given.
 * A netmask that is not contiguous derives nothing (rendering then reports PREFIX-TMPL as missing
 * wherever a file uses it).
 */
export function completePlaceholderValues(values: Readonly<Record<string, string>>): Record<string, string> {
  const result: Record<string, string> = { ...values };
  const netmask = values['NETMASK-TMPL'];
  if (result['PREFIX-TMPL'] === undefined && netmask !== undefined) {
    const prefix = netmaskToPrefix(netmask);
    if (prefix !== undefined) result['PREFIX-TMPL'] = String(prefix);
  }
  // /etc/hosts carries `FQDN SHORT` (hostname(1) --short is the first label).
  const hostname = values['HOSTNAME-TMPL'];
  if (result['SHORTNAME-TMPL'] === undefined && hostname !== undefined && hostname !== '') result['SHORTNAME-TMPL'] = hostname.split('.')[0]!;
  return result;
}

/** The distinct placeholder tokens (`NAME-TMPL`) in `text`, in order of first appearance. */
export function findPlaceholders(text: string): string[] {
  const seen = new Set<string>();
  for (const match of text.matchAll(TOKEN)) seen.add(match[0]);
  return [...seen];
}

/**
 * Replaces every placeholder token in `text` by its value in one pass: exact tokens only (no
 * regular expression is built from input, a value is inserted literally and never rescanned, so a
 * value containing `$&` or another placeholder stays as given). `PREFIX-TMPL` is derived from
 * `NETMASK-TMPL` when not given. Tokens without a value are left in place (see
 * {@link findPlaceholders} to check none remain). Values with control characters (newlines, NUL)
 * are rejected: they could add lines to a configuration file.
 */
export function renderPlaceholders(text: string, values: Readonly<Record<string, string>>): string {
  for (const [name, value] of Object.entries(values)) {
    if (!NAME.test(name)) {
      throw new InvalidArgumentError(`placeholder name \`${name}\` is not of the form NAME-TMPL`, { actual: name });
    }
    if (FORBIDDEN_IN_VALUE.test(value)) {
      throw new InvalidArgumentError(`value for ${name} contains a control character (newline, tab or NUL)`, {
        actual: value,
        hint: 'placeholder values are single words such as an address or a host name',
      });
    }
  }
  const complete = completePlaceholderValues(values);
  return text.replace(TOKEN, (token) => (Object.hasOwn(complete, token) ? complete[token]! : token));
}
