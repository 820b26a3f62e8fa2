import { InvalidArgumentError } from '../errors.js';

/**
 * Guards for every value that reaches a virt-install/virsh argv or the guest kernel command line.
 * No shell is ever involved, but virt-install itself splits option values on `,` and `=` and
 * honours quotes, so a value like `x,bus=ide` or `a" init=/bin/sh` would inject sub-options.
 */

function show(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

function firstBad(text: string, allowed: RegExp): string | undefined {
  for (const ch of text) if (!allowed.test(ch)) return ch;
  return undefined;
}

function describe(ch: string): string {
  if (ch === ' ') return 'a space';
  if (ch === ',') return 'a comma (virt-install splits option values on commas)';
  if (ch === '"' || ch === "'") return 'a quote';
  const code = ch.codePointAt(0)!;
  if (code < 0x20 || code === 0x7f) return `a control character (U+${code.toString(16).padStart(4, '0')})`;
  if (code > 0x7e) return `a non-ASCII character ${JSON.stringify(ch)}`;
  return `the character ${JSON.stringify(ch)}`;
}

const PATH_CHAR = /^[A-Za-z0-9._+@%:=/~-]$/;

/**
 * An absolute host path safe inside `--disk path=…,` and `--boot kernel=…,`: ASCII letters,
 * digits and `._+@%:=/~-` only — no spaces, commas, quotes or control characters.
 */
export function assertSafePath(path: string, option: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be an absolute path, got ${show(String(path))}`);
  }
  const bad = firstBad(path, PATH_CHAR);
  if (bad !== undefined) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a path virt-install can take safely, but ${show(path)} contains ${describe(bad)}`, {
      hint: 'use a path of ASCII letters, digits and ._+@%:=/~- only',
    });
  }
  if (path.split('/').includes('..')) {
    throw new InvalidArgumentError(`Expected \`${option}\` to have no \`..\` component, got ${show(path)}`);
  }
  return path;
}

/** A simple name token (bridge, pool, network, OS id, CPU model, virt type): no leading `-`. */
export function assertSafeName(value: string, option: string, maxLength = 64): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength || !/^[A-Za-z0-9_][A-Za-z0-9_.:+-]*$/.test(value)) {
    throw new InvalidArgumentError(
      `Expected \`${option}\` to be 1-${maxLength} characters of letters, digits and _.:+- not starting with \`-\`, got ${show(String(value))}`,
    );
  }
  return value;
}

/** A Linux bridge/interface name: at most 15 characters (IFNAMSIZ - 1). */
export function assertSafeBridge(value: string, option = 'bridge'): string {
  return assertSafeName(value, option, 15);
}

/** A libvirt connection URI like `qemu:///system` or `qemu+ssh://user@host/system`. */
export function assertSafeUri(value: string, option = 'connect'): string {
  if (typeof value !== 'string' || value.length > 1024 || !/^[a-z][a-z0-9+.-]*:\/\/[A-Za-z0-9._~:/?#@!$&()*+;=%[\]-]*$/.test(value) || value.includes(',')) {
    throw new InvalidArgumentError(`Expected \`${option}\` to be a libvirt URI like qemu:///system or qemu+ssh://host/system, got ${show(String(value))}`);
  }
  return value;
}

/**
 * libvirt remote-URI query parameters that only tune a connection; every other one (`command`,
 * `socket`, `netcat`, `proxy`, `keyfile`, `pkipath`, `known_hosts`, `name`, …) either makes
 * libvirt run a program of the URI's choosing, locally or over ssh, or reads files it names —
 * https://libvirt.org/uri.html#remote-uris. The `ext` transport runs `command` itself.
 */
const HARMLESS_URI_PARAMS = new Set(['no_verify', 'no_tty', 'sshauth', 'mode', 'known_hosts_verify', 'tls_priority']);

/**
 * Refuses a `--connect` URI (from a flag, a config or a fleet file) whose transport parameters make
 * libvirt run a program or use files it names, unless `allowParams` (`--allow-uri-params`).
 */
export function assertUriParamsAllowed(uri: string, option = '--connect', allowParams = false): string {
  if (allowParams) return uri;
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(uri)?.[1] ?? '';
  const hint = 'pass --allow-uri-params if you really mean libvirt to run or read what this URI names';
  if (scheme.split('+').slice(1).includes('ext')) {
    throw new InvalidArgumentError(`${option} ${show(uri)} uses the ext transport, which makes libvirt run a program`, { hint });
  }
  const query = uri.includes('?') ? uri.slice(uri.indexOf('?') + 1).split('#')[0]! : '';
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    let name = pair.split('=')[0]!;
    try {
      name = decodeURIComponent(name);
    } catch {
      /* an undecodable name is refused below as it is */
    }
    if (!HARMLESS_URI_PARAMS.has(name.toLowerCase())) {
      throw new InvalidArgumentError(`${option} ${show(uri)} has the transport parameter \`${name}=\`, which can make libvirt run a program or read files it names`, { hint });
    }
  }
  return uri;
}

/**
 * One guest kernel argument (`root=/dev/vda`, `panic=-1`, `_ip=192.168.1.197`): a key of
 * letters, digits and `_.-`, optionally `=` and a value without spaces, quotes or commas.
 */
export function assertSafeKernelArg(token: string, option = 'kernel argument'): string {
  if (typeof token !== 'string' || token.length === 0 || token.length > 512 || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:=[A-Za-z0-9_.:/+@=-]*)?$/.test(token)) {
    throw new InvalidArgumentError(
      `Expected each ${option} to be KEY or KEY=VALUE without spaces, quotes or commas, got ${show(String(token))}`,
    );
  }
  return token;
}

/** Splits user-given extra kernel arguments on whitespace and validates each token. */
export function parseKernelArgs(text: string, option = 'kernel-args'): string[] {
  return text
    .split(/[ \t]+/)
    .filter((t) => t.length > 0)
    .map((t) => assertSafeKernelArg(t, `\`${option}\` token`));
}
