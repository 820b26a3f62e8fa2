import { describe, expect, it } from 'vitest';
import {
  PLACEHOLDERS,
  completePlaceholderValues,
  findPlaceholders,
  netmaskToPrefix,
  renderPlaceholders,
} from '../../../src/template/placeholders.js';
import { isDiskwrightError } from '../../../src/errors.js';

const values = {
  'ADDRESS-TMPL': '192.168.1.197',
  'NETMASK-TMPL': '255.255.255.0',
  'GATEWAY-TMPL': '192.168.1.1',
  'HOSTNAME-TMPL': 'jgoulah.linux.bogus',
  'NAMESERVER-TMPL': '192.168.1.101',
};

describe('placeholders', () => {
  it('lists the article five placeholders', () => {
    expect(PLACEHOLDERS).toEqual(['ADDRESS-TMPL', 'NETMASK-TMPL', 'GATEWAY-TMPL', 'HOSTNAME-TMPL', 'NAMESERVER-TMPL']);
  });

  it('renders the article interfaces stanza like its sed script', () => {
    const text = 'iface eth0 inet static\naddress ADDRESS-TMPL\nnetmask NETMASK-TMPL\ngateway GATEWAY-TMPL\n';
    expect(renderPlaceholders(text, values)).toBe(
      'iface eth0 inet static\naddress 192.168.1.197\nnetmask 255.255.255.0\ngateway 192.168.1.1\n',
    );
  });

  it('derives PREFIX-TMPL from a contiguous netmask for CIDR addresses', () => {
    expect(renderPlaceholders('- ADDRESS-TMPL/PREFIX-TMPL', values)).toBe('- 192.168.1.197/24');
    expect(renderPlaceholders('PREFIX-TMPL', { 'NETMASK-TMPL': '255.255.225.0' })).toBe('PREFIX-TMPL');
  });

  it('inserts values literally: no $& expansion, no rescanning of inserted placeholders', () => {
    expect(renderPlaceholders('HOSTNAME-TMPL ADDRESS-TMPL', { 'HOSTNAME-TMPL': '$&$1 ADDRESS-TMPL', 'ADDRESS-TMPL': 'x' })).toBe(
      '$&$1 ADDRESS-TMPL x',
    );
  });

  it('replaces exact tokens only, not longer words that end the same', () => {
    expect(renderPlaceholders('MYHOSTNAME-TMPL HOSTNAME-TMPLX HOSTNAME-TMPL', values)).toBe(
      'MYHOSTNAME-TMPL HOSTNAME-TMPLX jgoulah.linux.bogus',
    );
  });

  it('leaves tokens without a value in place', () => {
    expect(renderPlaceholders('OTHER-TMPL HOSTNAME-TMPL', { 'HOSTNAME-TMPL': 'h' })).toBe('OTHER-TMPL h');
  });

  it('rejects values with newlines and names that are not placeholders', () => {
    expect(() => renderPlaceholders('x', { 'HOSTNAME-TMPL': 'a\nnameserver 6.6.6.6' })).toThrow(/control character/);
    let caught: unknown;
    try {
      renderPlaceholders('x', { 'host(.*)': 'a' });
    } catch (error) {
      caught = error;
    }
    expect(isDiskwrightError(caught, 'E_INVALID_ARGUMENT')).toBe(true);
  });

  it('finds each placeholder once, in order', () => {
    expect(findPlaceholders('a GATEWAY-TMPL b ADDRESS-TMPL/PREFIX-TMPL GATEWAY-TMPL xADDRESS-TMPL ADDRESS-TMPLs')).toEqual([
      'GATEWAY-TMPL',
      'ADDRESS-TMPL',
      'PREFIX-TMPL',
    ]);
    expect(findPlaceholders('nothing here -TMPL')).toEqual([]);
  });

  it('converts netmasks to prefixes and refuses non-contiguous ones', () => {
    expect(netmaskToPrefix('255.255.255.0')).toBe(24);
    expect(netmaskToPrefix('255.255.255.255')).toBe(32);
    expect(netmaskToPrefix('0.0.0.0')).toBe(0);
    expect(netmaskToPrefix('255.255.240.0')).toBe(20);
    expect(netmaskToPrefix('255.255.225.0')).toBeUndefined();
    expect(netmaskToPrefix('255.255.255')).toBeUndefined();
    expect(netmaskToPrefix('255.255.255.00')).toBeUndefined();
    expect(netmaskToPrefix('256.0.0.0')).toBeUndefined();
  });

  it('keeps an explicit PREFIX-TMPL value', () => {
    expect(completePlaceholderValues({ 'NETMASK-TMPL': '255.0.0.0', 'PREFIX-TMPL': '9' })['PREFIX-TMPL']).toBe('9');
    expect(completePlaceholderValues({ 'NETMASK-TMPL': '255.0.0.0' })['PREFIX-TMPL']).toBe('8');
  });
});
