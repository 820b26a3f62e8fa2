import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { isDiskwrightError } from '../../src/errors.js';
import {
  formatIPv4,
  parseIPv4,
  prefixToNetmask,
  randomMac,
  validateDomain,
  validateHostname,
  validateInstanceRequest,
  validateNetmask,
} from '../../src/instance/index.js';
import { buildVirtInstallArgs } from '../../src/virt/index.js';

/** Runs fn; returns its value, or undefined when it threw a DiskwrightError (anything else fails). */
function valueOrTypedError<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    expect(isDiskwrightError(error), String(error)).toBe(true);
    return undefined;
  }
}

const hostile = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom('a;rm -rf /', '--foo', 'x,bus=ide', 'a b', '"', "'", '$(id)', '\n', '255.255.225.0', '..', '/', '0x7f.1', '01.2.3.4'),
  fc.array(fc.constantFrom('a', '1', '.', '-', ',', ' ', '"', '=', '/', 'é', '\u0000'), { maxLength: 20 }).map((a) => a.join('')),
);

describe('validators: any string is a valid value or a DiskwrightError', () => {
  test.prop([hostile])('parseIPv4', (text) => {
    const ip = valueOrTypedError(() => parseIPv4(text));
    if (ip) expect(formatIPv4(ip.value)).toBe(text);
  });

  test.prop([hostile])('validateHostname', (text) => {
    const host = valueOrTypedError(() => validateHostname(text));
    if (host !== undefined) expect(host).toMatch(/^[A-Za-z0-9][A-Za-z0-9-]*$/);
  });

  test.prop([hostile])('validateDomain', (text) => {
    valueOrTypedError(() => validateDomain(text));
  });

  test.prop([hostile, fc.constantFrom('host', 'domain', 'gateway', 'netmask', 'nameserver', 'disk', 'ram', 'cpus', 'bridge', 'network', 'imagesDir', 'template', 'kernel', 'connect', 'os', 'cpu', 'mac', 'kernelArgs', 'serialLog', 'pool', 'virtType')])(
    'a request field never yields argv with separators smuggled in',
    (text, key) => {
      const spec = valueOrTypedError(() => validateInstanceRequest({ ip: '192.168.1.197', host: 'web1', [key]: text }, { cwd: '/srv' }));
      if (!spec) return;
      const argv = buildVirtInstallArgs({
        name: spec.host,
        ramMiB: spec.ramMiB,
        vcpus: spec.vcpus,
        cpu: spec.cpu,
        disk: { path: spec.diskPath },
        network: spec.network,
        mac: spec.mac ?? '52:54:00:00:00:01',
        kernel: spec.kernel ?? '/boot/vmlinuz',
        kernelArgs: [`_ip=${spec.ip}`, ...spec.extraKernelArgs],
        ...(spec.os ? { os: spec.os } : {}),
        ...(spec.connect ? { connect: spec.connect } : {}),
      });
      const disk = argv[argv.indexOf('--disk') + 1]!;
      expect(disk.split(',')).toHaveLength(3);
      const boot = argv[argv.indexOf('--boot') + 1]!;
      for (const word of argv) if (word !== boot) expect(word).not.toMatch(/[\u0000-\u001f'"\s]/);
      // Exactly the two quotes around kernel_args, which hold space-separated tokens only.
      expect(boot.split('"')).toHaveLength(3);
      expect(boot.split('"')[0]!.split(',').length).toBe(2);
      for (const token of boot.split('"')[1]!.split(' ')) expect(token).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(=[A-Za-z0-9_.:/+@=-]*)?$/);
    },
  );
});

describe('netmasks', () => {
  test.prop([fc.integer({ min: 0, max: 0xffffffff })])('a mask is accepted iff it is a prefix mask', (value) => {
    const text = formatIPv4(value);
    const prefixes = Array.from({ length: 33 }, (_, p) => prefixToNetmask(p));
    const result = valueOrTypedError(() => validateNetmask(text));
    expect(result !== undefined).toBe(prefixes.includes(text));
    if (result) expect(prefixToNetmask(result.prefix)).toBe(text);
  });

  test.prop([fc.integer({ min: 0, max: 32 })])('every prefix round-trips', (prefix) => {
    expect(validateNetmask(prefixToNetmask(prefix)).prefix).toBe(prefix);
  });
});

describe('MACs', () => {
  test.prop([fc.uniqueArray(fc.integer({ min: 0, max: 0xffffff }), { maxLength: 50 })])('randomMac avoids every taken MAC', (taken) => {
    const macs = taken.map((v) => `52:54:00:${[v >>> 16, (v >>> 8) & 0xff, v & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`);
    const mac = randomMac(macs);
    expect(macs).not.toContain(mac);
    expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });
});
