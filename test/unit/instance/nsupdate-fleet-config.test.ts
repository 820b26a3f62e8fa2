import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildNsupdateScript, configPaths, loadConfig, mergeRequests, parseFleet, MAX_FLEET_SIZE } from '../../../src/instance/index.js';

describe('buildNsupdateScript', () => {
  it('writes A and PTR updates, each zone sent on its own', () => {
    expect(buildNsupdateScript([{ host: 'web1', domain: 'linux.bogus', ip: '10.0.0.5' }], { ttl: 300 })).toBe(
      'update delete web1.linux.bogus. A\nupdate add web1.linux.bogus. 300 A 10.0.0.5\nsend\n' +
        'update delete 5.0.0.10.in-addr.arpa. PTR\nupdate add 5.0.0.10.in-addr.arpa. 300 PTR web1.linux.bogus.\nsend\n',
    );
  });

  it.each([
    [{ host: 'web1\nupdate delete x', domain: 'linux.bogus', ip: '10.0.0.5' }],
    [{ host: 'web1', domain: 'linux.bogus;', ip: '10.0.0.5' }],
    [{ host: 'web1', domain: 'linux.bogus', ip: '10.0.0.5\nsend' }],
  ])('refuses names or addresses that would inject lines: %j', (record) => {
    expect(() => buildNsupdateScript([record])).toThrow(expect.objectContaining({ code: 'E_INVALID_ARGUMENT' }));
  });

  it('validates the server and TTL', () => {
    expect(() => buildNsupdateScript([], { server: 'ns1;x' })).toThrow(/IPv4/);
    expect(() => buildNsupdateScript([], { ttl: -1 })).toThrow(/TTL/);
  });
});

describe('parseFleet', () => {
  it('reads defaults and instances, resolving relative paths against the fleet file', () => {
    const fleet = parseFleet({ defaults: { template: 'tmpl', ram: 1024 }, instances: [{ ip: '10.0.0.2', host: 'a' }] }, 'fleet.json', '/srv/fleet');
    expect(fleet).toEqual({ defaults: { template: '/srv/fleet/tmpl', ram: 1024 }, instances: [{ ip: '10.0.0.2', host: 'a' }] });
  });

  it('accepts a bare array', () => {
    expect(parseFleet([{ ip: '10.0.0.2', host: 'a' }], 'f', '/').instances).toHaveLength(1);
  });

  it.each([
    [{ instances: [] }, /non-empty/],
    [{ instances: [{ ip: '10.0.0.2', host: 'a', hots: 'x' }] }, /unknown key `hots`/],
    [{ defaults: { ip: '10.0.0.2' }, instances: [{ host: 'a' }] }, /unknown key `ip`/],
    [{ instances: [{ ip: 10 }] }, /must be a string/],
    [{ instance: [] }, /unknown key `instance`/],
    [{ instances: Array.from({ length: MAX_FLEET_SIZE + 1 }, () => ({})) }, /exceed the limit/],
    ['nope', /non-empty/],
  ])('rejects %j', (json, message) => {
    expect(() => parseFleet(json, 'fleet.json', '/')).toThrow(message);
  });
});

describe('config', () => {
  it('looks in $XDG_CONFIG_HOME, else ~/.config, and in ./', () => {
    expect(configPaths({ XDG_CONFIG_HOME: '/x' }, '/w')).toEqual({ xdg: '/x/diskwright/config.json', local: '/w/diskwright.config.json' });
    expect(configPaths({ HOME: '/home/u' }, '/w').xdg).toBe('/home/u/.config/diskwright/config.json');
    expect(configPaths({ HOME: '/home/u', XDG_CONFIG_HOME: 'relative' }, '/w').xdg).toBe('/home/u/.config/diskwright/config.json');
  });

  it('merges ./ over XDG; undefined never overrides', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dw-config-'));
    await mkdir(join(dir, 'xdg/diskwright'), { recursive: true });
    await writeFile(join(dir, 'xdg/diskwright/config.json'), JSON.stringify({ domain: 'a.example', ram: 1024, imagesDir: 'imgs' }));
    await writeFile(join(dir, 'diskwright.config.json'), JSON.stringify({ domain: 'b.example' }));
    const config = await loadConfig({ XDG_CONFIG_HOME: join(dir, 'xdg') }, dir);
    expect(config.values).toEqual({ domain: 'b.example', ram: 1024, imagesDir: join(dir, 'xdg/diskwright/imgs') });
    expect(config.sources).toEqual([join(dir, 'xdg/diskwright/config.json'), join(dir, 'diskwright.config.json')]);
    expect(mergeRequests(config.values, { domain: undefined, ram: '64' })).toMatchObject({ domain: 'b.example', ram: '64' });
  });

  it('reports invalid JSON with the file name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dw-config-'));
    await writeFile(join(dir, 'diskwright.config.json'), '{ nope');
    await expect(loadConfig({ XDG_CONFIG_HOME: join(dir, 'none') }, dir)).rejects.toThrow(/diskwright\.config\.json is not valid JSON/);
  });
});
