import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import {
  applyCustomization,
  FIRSTBOOT_SCRIPT,
  FIRSTBOOT_UNIT,
  FIRSTBOOT_UNIT_TEXT,
  FIRSTBOOT_WANTS,
  hashPassword,
  parsePublicKeys,
  passwordFromFile,
  prepareCustomization,
  readTemplateFacts,
} from '../../../src/instance/customize.js';
import { validateInstanceRequest } from '../../../src/instance/spec.js';
import { kvmProblem } from '../../../src/virt/kvm.js';
import type { VirtRunner } from '../../../src/virt/runner.js';
import { memoryFs } from '../../helpers/memory-fs.js';
import { requireTool } from '../../helpers/oracle.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n';
const SHADOW = 'root:*:19700:0:99999:7:::\nalice:!:19700:0:99999:7:::\n';

describe('per-instance customization', () => {
  it('accepts what ssh-keygen writes and refuses a private key or other text', async () => {
    await requireTool('ssh-keygen', 'openssh-client');
    const dir = await mkdtemp(join(tmpdir(), 'diskwright-key-'));
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@host', '-f', join(dir, 'k')]);
    const pub = await execa('cat', [join(dir, 'k.pub')]);
    expect(parsePublicKeys(`${pub.stdout}\n# comment\n`, 'k.pub')).toEqual([pub.stdout]);
    const priv = await execa('cat', [join(dir, 'k')]);
    expect(() => parsePublicKeys(priv.stdout, 'k')).toThrow(/is a private key/);
    expect(() => parsePublicKeys('hello world\n', 'x')).toThrow(/line 1 is not an OpenSSH public key/);
    expect(() => parsePublicKeys('\n', 'x')).toThrow(/holds no public key/);
  });

  it('hashes the password file\'s first line with SHA-512 crypt exactly as openssl passwd -6 does', async () => {
    await requireTool('openssl', 'openssl');
    const password = passwordFromFile('s3cret pass\nignored\n', 'pw');
    expect(password).toBe('s3cret pass');
    const hash = hashPassword(password);
    const salt = /^\$6\$([./0-9A-Za-z]{16})\$/.exec(hash)?.[1];
    expect(salt).toBeDefined();
    const oracle = await execa('openssl', ['passwd', '-6', '-salt', salt!, '-stdin'], { input: password });
    expect(hash).toBe(oracle.stdout.trim());
    expect(hashPassword(password)).not.toBe(hash);
    expect(() => passwordFromFile('\n', 'pw')).toThrow(/is empty/);
  });

  it('installs authorized_keys for root and for a user with sshd\'s owners and modes, sets the password, zone, first-boot unit and a fresh seed', async () => {
    const fs = memoryFs({
      '/etc/passwd': PASSWD,
      '/etc/shadow': { content: SHADOW, mode: 0o640, gid: 42 },
      '/home/alice': { dir: true, mode: 0o755 },
      '/root': { dir: true, mode: 0o700 },
      '/usr/share/zoneinfo/Europe/Berlin': 'TZif',
      '/etc/localtime': { symlink: '/usr/share/zoneinfo/Etc/UTC' },
      '/etc/timezone': 'Etc/UTC\n',
      '/lib/systemd/system/systemd-journald.service': '[Unit]\n',
      '/var/lib/systemd': { dir: true },
    });
    const dir = await mkdtemp(join(tmpdir(), 'diskwright-custom-'));
    await writeFile(join(dir, 'key.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5m9y0 me@host\n');
    await writeFile(join(dir, 'pw'), 'hunter2\n');
    await writeFile(join(dir, 'first.sh'), '#!/bin/sh\necho hello\n');
    const request = { sshKeyFile: join(dir, 'key.pub'), sshUser: 'alice', rootPasswordFile: join(dir, 'pw'), timezone: 'Europe/Berlin', firstbootFile: join(dir, 'first.sh') };
    const facts = await readTemplateFacts(fs, request);
    expect(facts).toEqual({ user: { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice' }, timezoneExists: true, init: 'systemd', hasShadowRoot: true });
    const customization = await prepareCustomization(request, facts, 'tmpl');
    expect(JSON.stringify(customization)).not.toContain('hunter2');
    const report = await applyCustomization(fs, customization);
    expect(report).toHaveLength(5);
    const keys = await fs.stat('/home/alice/.ssh/authorized_keys');
    const sshDir = await fs.stat('/home/alice/.ssh');
    expect([keys.mode, keys.uid, keys.gid, sshDir.mode, sshDir.uid, sshDir.gid]).toEqual([0o600, 1000, 1000, 0o700, 1000, 1000]);
    expect(await fs.readText('/home/alice/.ssh/authorized_keys')).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5m9y0 me@host\n');
    const shadow = await fs.readText('/etc/shadow');
    expect(shadow).toMatch(/^root:\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}:\d+:0:99999:7:::\nalice:!:/);
    expect((await fs.stat('/etc/shadow')).mode).toBe(0o640);
    expect(await fs.readlink('/etc/localtime')).toBe('/usr/share/zoneinfo/Europe/Berlin');
    expect(await fs.readText('/etc/timezone')).toBe('Europe/Berlin\n');
    expect(await fs.readText(FIRSTBOOT_UNIT)).toBe(FIRSTBOOT_UNIT_TEXT);
    expect(await fs.readlink(FIRSTBOOT_WANTS)).toBe(FIRSTBOOT_UNIT);
    expect((await fs.stat(FIRSTBOOT_SCRIPT)).mode).toBe(0o700);
    const seed = await fs.stat('/var/lib/systemd/random-seed');
    expect([seed.size, seed.mode]).toEqual([512, 0o600]);
  });

  it('refuses, before any disk work, a user the template lacks, an unknown zone and a script without #!', async () => {
    const fs = memoryFs({ '/etc/passwd': PASSWD, '/etc/shadow': SHADOW, '/etc/init.d': { dir: true } });
    const dir = await mkdtemp(join(tmpdir(), 'diskwright-custom-'));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'key.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5m9y0 me@host\n');
    await writeFile(join(dir, 'bad.sh'), 'echo no shebang\n');
    const bob = { sshKeyFile: join(dir, 'key.pub'), sshUser: 'bob' };
    await expect(prepareCustomization(bob, await readTemplateFacts(fs, bob), 'tmpl')).rejects.toThrow(/user bob does not exist in template tmpl/);
    const zone = { timezone: 'Mars/Olympus' };
    await expect(prepareCustomization(zone, await readTemplateFacts(fs, zone), 'tmpl')).rejects.toThrow(/time zone Mars\/Olympus is not in template/);
    const script = { firstbootFile: join(dir, 'bad.sh') };
    await expect(prepareCustomization(script, await readTemplateFacts(fs, script), 'tmpl')).rejects.toThrow(/does not start with #!/);
    expect((await readTemplateFacts(fs, {})).init).toBe('sysvinit');
  });

  it('validates the customization flags as strings first', () => {
    const base = { ip: '10.0.0.5', host: 'web1', gateway: '10.0.0.1', nameserver: '10.0.0.2', imagesDir: '/tmp' };
    expect(() => validateInstanceRequest({ ...base, sshUser: 'alice' })).toThrow(/--ssh-user needs --ssh-key/);
    expect(() => validateInstanceRequest({ ...base, sshKey: '/k.pub', sshUser: 'Alice;rm' })).toThrow(/ssh-user/);
    expect(() => validateInstanceRequest({ ...base, timezone: '../../etc/passwd' })).toThrow(/timezone/);
    expect(() => validateInstanceRequest({ ...base, fsUuid: 'maybe' })).toThrow(/fs-uuid/);
    const spec = validateInstanceRequest({ ...base, sshKey: 'k.pub', rootPasswordFile: 'pw', fsUuid: 'new' }, { cwd: '/home/me' });
    expect(spec.customize).toEqual({ sshKeyFile: '/home/me/k.pub', rootPasswordFile: '/home/me/pw' });
    expect(spec.newFsUuid).toBe(true);
  });
});

describe('the KVM check before anything is defined', () => {
  const runner = (exitCode: number): VirtRunner => async () => ({ exitCode, stdout: '', stderr: exitCode === 0 ? '' : 'error: invalid argument: KVM is not supported by \'/usr/bin/qemu-system-x86_64\' on this host' });

  it('names a missing /dev/kvm, a kvm_pvm module, or libvirt\'s own refusal, and passes a usable host', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'diskwright-kvm-'));
    const devKvm = join(dir, 'kvm');
    const sysModule = join(dir, 'module');
    await mkdir(join(sysModule, 'kvm'), { recursive: true });
    expect(await kvmProblem(runner(0), { local: true, devKvm, sysModule })).toMatch(/kvm does not exist/);
    await writeFile(devKvm, '');
    expect(await kvmProblem(runner(0), { local: true, devKvm, sysModule })).toBeUndefined();
    await mkdir(join(sysModule, 'kvm_pvm'));
    expect(await kvmProblem(runner(0), { local: true, devKvm, sysModule })).toMatch(/kvm_pvm/);
    expect(await kvmProblem(runner(1), { local: false, connect: 'qemu+ssh://h/system' })).toBe("libvirt reports no KVM: error: invalid argument: KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host");
  });
});

describe('customization in fleet files', () => {
  it('takes the customization keys in defaults and entries, resolving their paths against the fleet file', async () => {
    const { parseFleet } = await import('../../../src/instance/fleet.js');
    const fleet = parseFleet(
      { defaults: { sshKey: 'keys/ops.pub', timezone: 'UTC' }, instances: [{ ip: '10.0.0.2', host: 'a', rootPasswordFile: 'secrets/a.pw', firstboot: '/opt/first.sh', sshUser: 'alice', fsUuid: 'new' }] },
      'fleet.json',
      '/srv/fleet',
    );
    expect(fleet.defaults).toEqual({ sshKey: '/srv/fleet/keys/ops.pub', timezone: 'UTC' });
    expect(fleet.instances[0]).toEqual({ ip: '10.0.0.2', host: 'a', rootPasswordFile: '/srv/fleet/secrets/a.pw', firstboot: '/opt/first.sh', sshUser: 'alice', fsUuid: 'new' });
    expect(() => parseFleet({ instances: [{ ip: '10.0.0.2', host: 'a', rootPassword: 'hunter2' }] }, 'fleet.json', '/srv')).toThrow(/unknown key `rootPassword`/);
  });
});
