import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertUriParamsAllowed } from '../../../src/virt/safe.js';
import { runInProcess } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';

describe('libvirt URI transport parameters', () => {
  it.each([
    'qemu+ssh://h/system?command=/bin/sh',
    'qemu+ssh://h/system?no_tty=1&socket=/tmp/x',
    'qemu+ssh://h/system?netcat=/tmp/nc',
    'qemu+ssh://h/system?proxy=netcat',
    'qemu+ssh://h/system?keyfile=/root/.ssh/id_rsa',
    'qemu+ssh://h/system?comm%61nd=/bin/sh',
    'qemu+ext:///system',
  ])('refuses %s', (uri) => {
    expect(() => assertUriParamsAllowed(uri)).toThrow(/--connect .* (has the transport parameter|uses the ext transport)/);
  });

  it.each(['qemu:///system', 'qemu+ssh://user@host/system', 'qemu+ssh://h/system?no_verify=1&sshauth=agent', 'qemu+tls://h/system?mode=direct'])('accepts %s', (uri) => {
    expect(assertUriParamsAllowed(uri)).toBe(uri);
  });

  it('accepts anything with allowParams (--allow-uri-params)', () => {
    expect(assertUriParamsAllowed('qemu+ssh://h/system?command=/usr/bin/ssh', '--connect', true)).toMatch(/command=/);
  });

  it('refuses the URI from a flag and from the config file before any work, exit 2', async () => {
    const flagged = await runInProcess(['instance', 'list', '--connect', 'qemu+ssh://h/system?command=/bin/sh']);
    expect(flagged.code).toBe(2);
    expect(flagged.stderr).toMatch(/^diskwright: --connect "qemu\+ssh:\/\/h\/system\?command=\/bin\/sh" has the transport parameter `command=`.*\[E_INVALID_ARGUMENT\]\n  hint: pass --allow-uri-params/);
    const dir = await tempDir('diskwright-uri-');
    await mkdir(join(dir, 'diskwright'));
    await writeFile(join(dir, 'diskwright', 'config.json'), JSON.stringify({ connect: 'qemu+ssh://h/system?socket=/x' }));
    const configured = await runInProcess(['instance', 'create', '192.168.1.197', 'web1', '--dry-run'], { env: { ...process.env, XDG_CONFIG_HOME: dir } });
    expect(configured.code).toBe(2);
    expect(configured.stderr).toMatch(/connect in .*config\.json "qemu\+ssh:\/\/h\/system\?socket=\/x" has the transport parameter `socket=`/);
  });
});
