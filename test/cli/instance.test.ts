import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath, runBin, runInProcess } from '../helpers/cli.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfsCat, hostFsck, listDir, makeTemplate, sha256 } from '../oracle/instance-helpers.js';

let root: string;
let template: string;
let templateHash: string;
let env: NodeJS.ProcessEnv;
let n = 0;

beforeAll(async () => {
  await requireTool('mke2fs', 'e2fsprogs');
  root = await tempDir('diskwright-instance-cli-');
  ({ template } = await makeTemplate(join(root, 'tmpl'), { size: '32M' }));
  templateHash = await sha256(template);
  // An empty XDG config dir and no virsh on PATH: libvirt is unreachable, defaults are built-in.
  env = { ...process.env, XDG_CONFIG_HOME: join(root, 'xdg'), DISKWRIGHT_VIRSH: join(root, 'no-such-virsh'), DISKWRIGHT_VIRT_INSTALL: join(root, 'no-such-virt-install') };
});

async function images(): Promise<string> {
  const dir = join(root, `images${n++}`);
  await mkdir(dir);
  return dir;
}

const common = (dir: string) => ['--template', template, '--images-dir', dir, '--disk', '64M'];

describe('diskwright instance create', () => {
  it('--dry-run validates, prints the plan and the commands, and writes nothing', async () => {
    const dir = await images();
    const r = await runInProcess(['instance', 'create', '192.168.1.197', 'jgoulah', ...common(dir), '--dry-run'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('instance jgoulah.linux.bogus (dry run: nothing written)');
    expect(r.stdout).toContain('steps       validate → copy → preen → resize → render → customize → check → rename → define → start');
    expect(r.stdout).toMatch(/virt-install --name jgoulah --ram 512 --vcpus 1 --cpuset=auto --cpu host --disk path=.*jgoulah-disk0,bus=virtio,cache=none --network bridge=br0 --mac 52:54:00:/);
    expect(r.stdout).toContain(`'kernel=${join(root, 'tmpl', 'vmlinuz-6.1.0-test')},initrd=`);
    expect(r.stdout).toContain('    virsh start jgoulah');
    expect(await listDir(dir)).toEqual([]);
  });

  it('--disk-only --json builds the disk and prints the exact argv without running it', async () => {
    const dir = await images();
    const r = await runInProcess(['instance', 'create', '10.1.2.3', 'web1', ...common(dir), '--netmask', '255.255.240.0', '--gateway', '10.1.0.1', '--disk-only', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { outcome: string; disk: string; mac: string; commands: { virtInstall: string[]; virshStart: string[] } };
    expect(out.outcome).toBe('disk');
    expect(out.disk).toBe(join(dir, 'web1-disk0'));
    expect(out.commands.virshStart).toEqual(['virsh', 'start', 'web1']);
    expect(out.commands.virtInstall.slice(0, 3)).toEqual(['virt-install', '--name', 'web1']);
    expect(out.commands.virtInstall).toContain(out.mac);
    expect(out.commands.virtInstall.join(' ')).toContain('_ip=10.1.2.3 _hostname=web1.linux.bogus _gateway=10.1.0.1 _dns1=192.168.1.101 _netmask=255.255.240.0');
    expect((await hostFsck(out.disk)).exitCode).toBe(0);
    expect(await debugfsCat(out.disk, '/etc/hostname')).toBe('web1.linux.bogus');
    expect(await sha256(template)).toBe(templateHash);
  });

  it('takes a qcow2 template (diskwright convert made it) for a thin instance, without --format on the template', async () => {
    const dir = await images();
    const qcow2 = join(root, 'tmpl', 'as.qcow2');
    expect((await runBin(['convert', template, qcow2, '-O', 'qcow2'], { env })).code).toBe(0);
    await writeFile(`${qcow2}.diskwright.json`, await readFile(`${template}.diskwright.json`));
    const hash = await sha256(qcow2);
    const r = await runBin(['instance', 'create', '10.0.0.5', 'q1', '--template', qcow2, '--images-dir', dir, '--disk', '64M', '--disk-only', '--format', 'qcow2'], { env });
    expect(r.code, r.stderr).toBe(0);
    // The instance and the shared grown layer of the template at 64M (src/instance/grown-base.ts).
    expect(await listDir(dir)).toEqual(['.diskwright-bases', 'q1-disk0.qcow2']);
    expect((await listDir(join(dir, '.diskwright-bases'))).filter((f) => f.endsWith('.qcow2'))).toEqual([expect.stringMatching(/^as\.qcow2-67108864-[0-9a-f]{16}\.qcow2$/)]);
    expect(await sha256(qcow2)).toBe(hash);
  });

  it('rejects the article\'s netmask with exit 2 and one line', async () => {
    const dir = await images();
    const r = await runInProcess(['instance', 'create', '192.168.1.197', 'jgoulah', ...common(dir), '--netmask', '255.255.225.0'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'diskwright: netmask 255.255.225.0 is not contiguous: bits after the first 0 must be 0 (did you mean 255.255.255.0?) [E_INVALID_ARGUMENT]\n',
    );
    expect(await listDir(dir)).toEqual([]);
  });

  it.each([
    ['a;rm -rf /', []],
    ['x,bus=ide', []],
    ['web1', ['--bridge', 'br0,model=e1000']],
    ['web1', ['--kernel-args', 'init=/bin/sh"']],
    ['web1', ['--ram', '512M']],
  ] as const)('rejects host %j with %j before any work (exit 2)', async (host, extra) => {
    const dir = await images();
    const r = await runInProcess(['instance', 'create', '192.168.1.197', host, ...common(dir), ...extra], { env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await listDir(dir)).toEqual([]);
  });

  it('needs IP and HOST', async () => {
    const r = await runInProcess(['instance', 'create', '192.168.1.197'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/expected IP and HOST/);
  });

  it('refuses a full create when libvirt is unreachable, before writing', async () => {
    const dir = await images();
    const r = await runInProcess(['instance', 'create', '192.168.1.197', 'web1', ...common(dir)], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/step validate failed: libvirt is not reachable/);
    expect(await listDir(dir)).toEqual([]);
  });

  it('writes an nsupdate script with A and PTR records', async () => {
    const dir = await images();
    const script = join(dir, 'dns.nsupdate');
    const r = await runInProcess(['instance', 'create', '192.168.1.197', 'jgoulah', ...common(dir), '--disk-only', '--nsupdate', script, '--nsupdate-server', '192.168.1.101'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(script, 'utf8')).toBe(
      [
        'server 192.168.1.101',
        'update delete jgoulah.linux.bogus. A',
        'update add jgoulah.linux.bogus. 3600 A 192.168.1.197',
        'send',
        'update delete 197.1.168.192.in-addr.arpa. PTR',
        'update add 197.1.168.192.in-addr.arpa. 3600 PTR jgoulah.linux.bogus.',
        'send',
        '',
      ].join('\n'),
    );
  });

  it('takes defaults from the XDG config, overridden by ./diskwright.config.json, overridden by flags', async () => {
    const dir = await images();
    const xdg = join(root, 'xdg-precedence');
    await mkdir(join(xdg, 'diskwright'), { recursive: true });
    await writeFile(join(xdg, 'diskwright', 'config.json'), JSON.stringify({ domain: 'xdg.example', ram: 1024, cpus: 2, template, imagesDir: dir, disk: '64M' }));
    const cwd = join(root, 'project');
    await mkdir(cwd, { recursive: true });
    await writeFile(join(cwd, 'diskwright.config.json'), JSON.stringify({ domain: 'local.example', ram: 2048 }));
    const r = await execa(process.execPath, [binPath, 'instance', 'create', '192.168.1.197', 'web1', '--cpus', '4', '--dry-run', '--json'], {
      cwd,
      env: { ...env, XDG_CONFIG_HOME: xdg },
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { fqdn: string; ramMiB: number; vcpus: number; nameserver: string };
    expect(plan).toMatchObject({ fqdn: 'web1.local.example', ramMiB: 2048, vcpus: 4, nameserver: '192.168.1.101' });
  });

  it('rejects unknown keys in a config file', async () => {
    const xdg = join(root, 'xdg-bad');
    await mkdir(join(xdg, 'diskwright'), { recursive: true });
    await writeFile(join(xdg, 'diskwright', 'config.json'), JSON.stringify({ netmsk: '255.255.255.0' }));
    const r = await runInProcess(['instance', 'create', '192.168.1.197', 'web1', '--dry-run'], { env: { ...env, XDG_CONFIG_HOME: xdg } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown key `netmsk`/);
  });

  it('--from creates a fleet; a bad entry fails alone and the summary says which succeeded', async () => {
    const dir = await images();
    const fleet = join(dir, 'fleet.json');
    await writeFile(
      fleet,
      JSON.stringify({
        defaults: { template, imagesDir: dir, disk: '64M' },
        instances: [
          { ip: '192.168.1.10', host: 'a1' },
          { ip: '192.168.1.11', host: 'a2', netmask: '255.255.225.0' },
          { ip: '192.168.1.12', host: 'a3' },
          { ip: '192.168.1.13', host: 'a1' },
        ],
      }),
    );
    const r = await runInProcess(['instance', 'create', '--from', fleet, '--disk-only', '--jobs', '2', '--json'], { env });
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { succeeded: { host: string }[]; failed: { host: string; code: string; message: string }[] };
    expect(out.succeeded.map((s) => s.host)).toEqual(['a1', 'a3']);
    expect(out.failed.map((f) => f.host)).toEqual(['a2', 'a1']);
    expect(out.failed[0]!.message).toMatch(/not contiguous/);
    expect(out.failed[1]!.message).toMatch(/already used by entry 1/);
    expect(await listDir(dir)).toEqual(['a1-disk0', 'a3-disk0', 'fleet.json']);
    for (const host of ['a1', 'a3']) expect((await hostFsck(join(dir, `${host}-disk0`))).exitCode).toBe(0);
  });
});

describe('Ctrl-C', () => {
  it('SIGINT during the copy exits 130 and leaves no disk, no temp file and the template untouched', async () => {
    const dir = await images();
    const big = await makeTemplate(join(root, 'big'), { size: '256M', bigFileBytes: 160 << 20 });
    const bigHash = await sha256(big.template);
    const child = execa(process.execPath, [binPath, 'instance', 'create', '192.168.1.197', 'web1', '--template', big.template, '--images-dir', dir, '--disk', '1G', '--disk-only', '--json'], {
      env,
      reject: false,
    });
    let sent = false;
    child.stderr!.on('data', (chunk: Buffer) => {
      if (!sent && chunk.toString().includes('"event":"step","host":"web1","step":"copy","phase":"start"')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const result = await child;
    expect(sent).toBe(true);
    expect(result.exitCode, result.stderr).toBe(130);
    expect(result.stderr).toMatch(/step \w+ failed: .*abort|interrupt/i);
    expect(await listDir(dir)).toEqual([]);
    expect(await sha256(big.template)).toBe(bigHash);
  }, 120_000);
});

describe('diskwright instance list / destroy (fake virsh)', () => {
  let fakeEnv: NodeJS.ProcessEnv;
  let log: string;
  beforeAll(async () => {
    log = join(root, 'virsh.log');
    const fake = join(root, 'fake-virsh.mjs');
    await writeFile(
      fake,
      `#!${process.execPath}
import { appendFileSync } from 'node:fs';
const argv = process.argv.slice(2);
appendFileSync(${JSON.stringify(log)}, JSON.stringify(argv) + '\\n');
const cmd = argv.find((a) => !a.startsWith('-') && !a.includes('://'));
const out = {
  list: 'web1\\n',
  domstate: 'running\\n',
  domiflist: ' Interface Type Source Model MAC\\n---\\n vnet0 bridge br0 virtio 52:54:00:aa:bb:cc\\n',
  domblklist: ' Type Device Target Source\\n---\\n file disk vda ${join(root, 'web1-disk0')}\\n',
}[cmd];
if (cmd === 'vol-delete') { process.stderr.write('error: no pool\\n'); process.exit(1); }
process.stdout.write(out ?? '');
`,
    );
    await chmod(fake, 0o755);
    await writeFile(join(root, 'web1-disk0'), 'disk');
    fakeEnv = { ...env, DISKWRIGHT_VIRSH: fake };
  });

  it('list --json shows domains with state, MACs and disks', async () => {
    const r = await runBin(['instance', 'list', '--connect', 'qemu:///session', '--json'], { env: fakeEnv });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { name: 'web1', state: 'running', macs: ['52:54:00:aa:bb:cc'], disks: [{ type: 'file', device: 'disk', target: 'vda', source: join(root, 'web1-disk0') }] },
    ]);
  });

  it('destroy stops, undefines and removes the local HOST-disk0 file, and the commit record an interrupted write left beside it', async () => {
    // A stale record would be "rolled back" onto the next web1-disk0 by its first writer.
    await writeFile(join(root, 'web1-disk0.diskwright-undo'), 'record of the removed disk');
    const r = await runInProcess(['instance', 'destroy', 'web1'], { env: fakeEnv });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`instance web1 stopped and undefined; removed ${join(root, 'web1-disk0')}\n`);
    const calls = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as string[]);
    expect(calls.slice(-5).map((c) => c[0])).toEqual(['domstate', 'domblklist', 'destroy', 'undefine', 'vol-delete']);
    expect((await listDir(root)).includes('web1-disk0')).toBe(false);
    expect((await listDir(root)).includes('web1-disk0.diskwright-undo')).toBe(false);
  });

  it('destroy refuses a hostile host name with exit 2', async () => {
    const r = await runInProcess(['instance', 'destroy', '--', '--all'], { env: fakeEnv });
    expect(r.code).toBe(2);
  });
});

describe('instance create validation', () => {
  it('reports every problem at once, nsupdate included, with exit 2 and nothing written', async () => {
    const dir = await tempDir('diskwright-instance-problems-');
    const r = await runInProcess(
      ['instance', 'create', '10.0.0.5', 'web1', '--gateway', '192.168.1.1', '--images-dir', dir, '--ram', 'lots', '--nsupdate', join(dir, 'missing', 'x.nsupdate'), '--nsupdate-server', '300.1.1.1'],
      { env: { ...process.env, XDG_CONFIG_HOME: join(dir, 'xdg') } },
    );
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe('diskwright: 4 problems with instance web1:');
    expect(r.stderr).toMatch(/- gateway 192\.168\.1\.1 is outside the instance's subnet 10\.0\.0\.0\/24/);
    expect(r.stderr).toMatch(/- .*ram/);
    expect(r.stderr).toMatch(/- .*nsupdate server/);
    expect(r.stderr).toMatch(/- --nsupdate: cannot write .*x\.nsupdate: directory .* does not exist/);
    expect(await readdir(dir)).toEqual([]);
  });
});
