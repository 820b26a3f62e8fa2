import { resolve } from 'node:path';
import {
  assertOutputWritable,
  assertUriParamsAllowed,
  InvalidArgumentError,
  buildNsupdateScript,
  createExecaRunner,
  createFleet,
  createInstance,
  defaultSteps,
  destroyInstance,
  DiskwrightError,
  formatBytes,
  formatCommandLine,
  listInstances,
  listSharedBases,
  loadConfig,
  pruneStaleBases,
  mergeRequests,
  readFleet,
  validateInstanceRequest,
  withAtomicOutput,
  DEFAULT_FLEET_CONCURRENCY,
  MAX_FLEET_CONCURRENCY,
  type DnsRecord,
  type InstancePlan,
  type InstanceSpec,
  type InstanceRequest,
  type InstanceResult,
  type VirtRunner,
} from '../../index.js';
import { flag, printJson, stringOption, type CommandContext, type Command, type ParsedArgs } from '../command.js';
import { createProgress, createStepReporter, noteLeaves } from '../progress.js';

/** Flags of `instance create` that map 1:1 onto request keys. */
const REQUEST_FLAGS: readonly [flag: string, key: keyof InstanceRequest][] = [
  ['template', 'template'],
  ['domain', 'domain'],
  ['gateway', 'gateway'],
  ['netmask', 'netmask'],
  ['nameserver', 'nameserver'],
  ['disk', 'disk'],
  ['ram', 'ram'],
  ['cpus', 'cpus'],
  ['bridge', 'bridge'],
  ['network', 'network'],
  ['images-dir', 'imagesDir'],
  ['kernel', 'kernel'],
  ['initrd', 'initrd'],
  ['kernel-args', 'kernelArgs'],
  ['connect', 'connect'],
  ['virt-type', 'virtType'],
  ['os', 'os'],
  ['cpu', 'cpu'],
  ['mac', 'mac'],
  ['pool', 'pool'],
  ['serial-log', 'serialLog'],
  ['graphics', 'graphics'],
  ['cpuset', 'cpuset'],
  ['ssh-key', 'sshKey'],
  ['ssh-user', 'sshUser'],
  ['root-password-file', 'rootPasswordFile'],
  ['timezone', 'timezone'],
  ['firstboot', 'firstboot'],
  ['fs-uuid', 'fsUuid'],
  ['format', 'format'],
];

/** The runner for real tools; `DISKWRIGHT_VIRSH` / `DISKWRIGHT_VIRT_INSTALL` may name other programs. */
function runnerFor(ctx: CommandContext): VirtRunner {
  return createExecaRunner({ virsh: ctx.env.DISKWRIGHT_VIRSH, virtInstall: ctx.env.DISKWRIGHT_VIRT_INSTALL });
}

function requestFromFlags(args: ParsedArgs): InstanceRequest {
  const out: Record<string, string | boolean> = {};
  for (const [name, key] of REQUEST_FLAGS) {
    const value = stringOption(args, name);
    if (value !== undefined) out[key] = value;
  }
  if (flag(args, 'standalone')) out.standalone = true;
  return out as InstanceRequest;
}

/** The plan as JSON: every decision and the exact argv (program first). */
function planJson(plan: InstancePlan): Record<string, unknown> {
  const { spec } = plan;
  return {
    host: spec.host,
    fqdn: spec.fqdn,
    ip: spec.ip,
    netmask: spec.netmask,
    prefix: spec.prefix,
    gateway: spec.gateway,
    nameserver: spec.nameserver,
    mac: plan.mac,
    template: spec.template,
    disk: 'path' in plan.disk ? plan.disk.path : `${plan.disk.pool}/${plan.disk.volume}`,
    format: spec.diskKind === 'raw' ? 'raw' : 'qcow2',
    // qemu-img info's names: a thin disk's backing file is the raw template.
    'backing-filename': spec.diskKind === 'thin' ? spec.template : null,
    'backing-filename-format': spec.diskKind === 'thin' ? 'raw' : null,
    diskBytes: spec.diskBytes,
    ramMiB: spec.ramMiB,
    vcpus: spec.vcpus,
    kernel: plan.kernel,
    initrd: plan.initrd ?? null,
    kernelArgs: plan.kernelArgs,
    files: plan.files,
    libvirt: plan.libvirt,
    steps: plan.steps,
    commands: {
      ...(plan.volCreate ? { volCreate: ['virsh', ...plan.volCreate], volUpload: ['virsh', ...plan.volUpload!] } : {}),
      virtInstall: ['virt-install', ...plan.virtInstall],
      virshStart: ['virsh', ...plan.virshStart],
    },
  };
}

function commandLines(plan: InstancePlan): string[] {
  return [
    ...(plan.volCreate ? [formatCommandLine('virsh', plan.volCreate), formatCommandLine('virsh', plan.volUpload!)] : []),
    formatCommandLine('virt-install', plan.virtInstall),
    formatCommandLine('virsh', plan.virshStart),
  ];
}

function printPlanText(ctx: CommandContext, plan: InstancePlan): void {
  const { spec } = plan;
  const lines = [
    `instance ${spec.fqdn} (dry run: nothing written)`,
    `  address     ${spec.ip}/${spec.prefix} (netmask ${spec.netmask}) gateway ${spec.gateway} nameserver ${spec.nameserver}`,
    `  machine     ${spec.vcpus} vCPU, ${spec.ramMiB} MiB, MAC ${plan.mac}`,
    `  template    ${spec.template}`,
    `  disk        ${'path' in plan.disk ? plan.disk.path : `pool ${plan.disk.pool}, volume ${plan.disk.volume}`} (${formatBytes(spec.diskBytes)}, ${spec.diskKind === 'raw' ? 'raw' : spec.diskKind === 'thin' ? `qcow2 over ${spec.template}` : 'standalone qcow2'})`,
    `  kernel      ${plan.kernel}${plan.initrd ? ` + ${plan.initrd}` : ''}`,
    `  render      ${plan.files.map((f) => f.path).join(', ')}`,
    `  libvirt     ${plan.libvirt === 'reachable' ? 'reachable: name and MAC checked' : 'not reachable: name and MAC not checked'}`,
    `  steps       ${plan.steps.join(' → ')}`,
    '  commands:',
    ...commandLines(plan).map((l) => `    ${l}`),
  ];
  ctx.stdout.write(`${lines.join('\n')}\n`);
}

function printResultText(ctx: CommandContext, result: InstanceResult): void {
  const { plan } = result;
  if (result.outcome === 'planned') return printPlanText(ctx, plan);
  if (result.outcome === 'disk') {
    ctx.stdout.write(`disk ready: ${result.disk} (${plan.spec.fqdn}, MAC ${plan.mac})\nto define and start it, run:\n${commandLines(plan).map((l) => `  ${l}`).join('\n')}\n`);
    return;
  }
  ctx.stdout.write(`instance ${plan.spec.host} started: ${plan.spec.fqdn} ${plan.spec.ip}, MAC ${plan.mac}, disk ${result.disk}\n`);
}

function resultJson(result: InstanceResult): Record<string, unknown> {
  return { outcome: result.outcome, ...planJson(result.plan), disk: result.disk, output: result.outcome === 'planned' ? null : result.disk, timings: result.steps };
}

async function writeNsupdate(path: string, records: readonly DnsRecord[], server: string | undefined): Promise<void> {
  const script = buildNsupdateScript(records, server === undefined ? {} : { server });
  await withAtomicOutput(path, async (handle) => {
    await handle.writeFile(script);
  });
}

/** Every `--connect` URI a run will use (flag, config file, fleet file) must pass the URI policy. */
function checkConnect(args: ParsedArgs, uris: readonly [where: string, uri: string | undefined][]): void {
  for (const [where, uri] of uris) if (uri !== undefined) assertUriParamsAllowed(String(uri), where, flag(args, 'allow-uri-params'));
}

const URI_PARAMS_HELP = `      --allow-uri-params  accept libvirt URI transport parameters that run programs or name
                          files (command=, socket=, netcat=, proxy=, keyfile=, the ext transport)`;

/** The nsupdate file must be writable and the server an IPv4 address — checked before any work. */
async function nsupdateProblems(path: string | undefined, server: string | undefined, dryRun: boolean): Promise<DiskwrightError[]> {
  const problems: DiskwrightError[] = [];
  if (server !== undefined) {
    try {
      buildNsupdateScript([], { server });
    } catch (error) {
      if (!(error instanceof DiskwrightError)) throw error;
      problems.push(error);
    }
  }
  if (path !== undefined && !dryRun) {
    await assertOutputWritable(path).catch((error: unknown) => {
      if (!(error instanceof DiskwrightError)) throw error;
      problems.push(new InvalidArgumentError(`--nsupdate: ${error.message}`, { ...(error.hint ? { hint: error.hint } : {}) }));
    });
  }
  return problems;
}

function parseJobs(text: string | undefined): number {
  if (text === undefined) return DEFAULT_FLEET_CONCURRENCY;
  if (!/^[0-9]{1,3}$/.test(text) || Number(text) < 1 || Number(text) > MAX_FLEET_CONCURRENCY) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `Expected \`--jobs\` to be 1-${MAX_FLEET_CONCURRENCY}, got \`${text}\``);
  }
  return Number(text);
}

const create: Command = {
  name: 'instance create',
  summary: 'create a VM from a template: copy, grow, fsck, resize, render, define, start',
  help: `Usage: diskwright instance create IP HOST [options]
       diskwright instance create --from FLEET.json [--jobs N] [options]

The reference article's "buildserver IP HOST" script without root, mounts or a shell: copies the
template's allocated blocks to a temp file beside IMAGES_DIR/HOST-disk0, grown to --disk (while
e2fsck -fn checks the template; the copy gets e2fsck -fp only if the template is not clean), runs
resize2fs (WebAssembly, no host e2fsprogs), fills ADDRESS/NETMASK/GATEWAY/HOSTNAME/NAMESERVER-TMPL
in the files the template manifest lists, requires e2fsck -fn to be clean, renames it into place,
then runs virt-install --import and virsh start. Everything is validated first; any failure or
Ctrl-C removes what this run created and never touches the template.

Defaults are the article's; a config file can change them. Precedence: flags >
./diskwright.config.json > $XDG_CONFIG_HOME/diskwright/config.json (~/.config/…) > built-in.

Options:
      --template PATH     template file (default IMAGES_DIR/debian-tmpl); its manifest is PATH.diskwright.json.
                          A raw filesystem image or a qcow2 holding one (template make -O qcow2)
      --domain D          DNS domain; the FQDN is HOST.D (default linux.bogus)
      --gateway IP        default: the first host of the subnet of IP and --netmask
                          (192.168.1.1 for 192.168.1.197/24); must be inside it
      --netmask MASK      contiguous netmask (default 255.255.255.0)
      --nameserver IP     default 192.168.1.101
      --disk SIZE         disk size, e.g. 10G (default 10G; not smaller than the template)
      --ram MIB           memory in MiB (default 512)
      --cpus N            vCPUs (default 1)
      --bridge BR         host bridge (default br0)
      --network SPEC      bridge=BR, network=NAME or user (overrides --bridge)
      --images-dir DIR    where HOST-disk0 goes (default /var/lib/libvirt/images)
      --kernel PATH       guest kernel (default: the one the template recorded)
      --initrd PATH       guest initrd (with --kernel)
      --kernel-args ARGS  extra guest kernel arguments, e.g. "panic=-1 net.ifnames=0"
      --connect URI       libvirt URI for virt-install and virsh (e.g. qemu+ssh://host/system)
${URI_PARAMS_HELP}
      --pool NAME         upload the finished disk into this libvirt storage pool
      --virt-type TYPE    virt-install --virt-type (e.g. qemu for TCG)
      --os NAME           osinfo name (default: --osinfo detect=on,require=off)
      --cpu MODEL         virt-install --cpu (default host)
      --mac MAC           use this MAC (default: random 52:54:00:xx:xx:xx not used by any domain)
      --serial-log PATH   log the guest serial console to PATH
      --graphics vnc|none default vnc
      --cpuset auto|none|N-M  virt-install --cpuset (default auto, the article's: libvirt then asks
                          numad for a placement and \`virsh start\` fails without numad; none omits it)
      --ssh-key FILE      add these public keys to root's (or --ssh-user's) ~/.ssh/authorized_keys
      --ssh-user NAME     the image's user that gets --ssh-key (default root)
      --root-password-file FILE  root password from the file's first line, stored as a SHA-512
                          crypt hash (the clear text never appears on argv or in any manifest)
      --timezone ZONE     /etc/localtime and /etc/timezone, e.g. Europe/Berlin
      --firstboot FILE    script run once at the first boot (systemd oneshot unit or sysvinit script)
      --fs-uuid keep|new  new: a fresh filesystem UUID for this instance (fstab follows); default keep
      --format raw|qcow2  instance disk format (default raw). qcow2: IMAGES_DIR/HOST-disk0.qcow2 is a
                          thin overlay whose backing file is the template (only what the instance
                          changes is stored; the template is then protected, see docs/instance.md)
      --standalone        with --format qcow2: a full qcow2 with no backing file
      --disk-only         build the disk, print the virt-install/virsh commands, run neither
      --dry-run           validate and print the plan; write nothing
      --from FLEET.json   create many instances (see docs/instance.md for the format)
      --jobs N            fleet concurrency (default ${DEFAULT_FLEET_CONCURRENCY})
      --nsupdate FILE     also write an nsupdate script with A and PTR records
      --nsupdate-server IP  add a \`server\` line to that script
      --json              JSON result on stdout, progress as JSON lines on stderr

Examples:
  diskwright instance create 192.168.1.197 jgoulah
  diskwright instance create 10.0.0.5 web1 --template ./debian-tmpl --images-dir ./images --disk-only --json
  diskwright instance create 192.168.1.198 web2 --format qcow2      # thin: a few MiB per instance
  diskwright instance create --from fleet.json --jobs 2 --nsupdate fleet.nsupdate
`,
  options: {
    template: { type: 'string' },
    domain: { type: 'string' },
    gateway: { type: 'string' },
    netmask: { type: 'string' },
    nameserver: { type: 'string' },
    disk: { type: 'string' },
    ram: { type: 'string' },
    cpus: { type: 'string' },
    bridge: { type: 'string' },
    network: { type: 'string' },
    'images-dir': { type: 'string' },
    kernel: { type: 'string' },
    initrd: { type: 'string' },
    'kernel-args': { type: 'string' },
    connect: { type: 'string' },
    pool: { type: 'string' },
    'virt-type': { type: 'string' },
    os: { type: 'string' },
    cpu: { type: 'string' },
    mac: { type: 'string' },
    'serial-log': { type: 'string' },
    graphics: { type: 'string' },
    cpuset: { type: 'string' },
    'ssh-key': { type: 'string' },
    'ssh-user': { type: 'string' },
    'root-password-file': { type: 'string' },
    timezone: { type: 'string' },
    firstboot: { type: 'string' },
    'fs-uuid': { type: 'string' },
    format: { type: 'string' },
    standalone: { type: 'boolean' },
    'disk-only': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    from: { type: 'string' },
    jobs: { type: 'string' },
    nsupdate: { type: 'string' },
    'nsupdate-server': { type: 'string' },
    'allow-uri-params': { type: 'boolean' },
  },
  async run(args, ctx) {
    const cwd = process.cwd();
    const dryRun = flag(args, 'dry-run');
    const diskOnly = flag(args, 'disk-only');
    const fleetPath = stringOption(args, 'from');
    const nsupdate = stringOption(args, 'nsupdate');
    const nsupdateServer = stringOption(args, 'nsupdate-server');
    if (fleetPath === undefined && args.positionals.length !== 2) {
      throw new DiskwrightError('E_USAGE', 'instance create: expected IP and HOST (or --from FLEET.json)', {
        hint: 'diskwright instance create 192.168.1.197 jgoulah',
      });
    }
    if (fleetPath !== undefined && args.positionals.length > 0) {
      throw new DiskwrightError('E_USAGE', 'instance create: IP and HOST come from the fleet file with --from', { hint: 'remove the positional arguments' });
    }
    const config = await loadConfig(ctx.env, cwd);
    const flags = requestFromFlags(args);
    checkConnect(args, [
      ['--connect', flags.connect],
      [`connect in ${config.sources.join(', ') || 'the config file'}`, config.values.connect],
    ]);
    const runner = runnerFor(ctx);
    // Step names on a terminal, step events with --json (the copy also has a progress bar).
    const onStep = createStepReporter(ctx);

    if (fleetPath !== undefined) {
      const jobs = parseJobs(stringOption(args, 'jobs'));
      const nsProblems = await nsupdateProblems(nsupdate, nsupdateServer, dryRun);
      if (nsProblems.length > 0) throw nsProblems[0]!;
      const fleet = await readFleet(fleetPath);
      checkConnect(args, [fleet.defaults, ...fleet.instances].map((r) => [`connect in ${fleetPath}`, r.connect] as [string, string | undefined]));
      const progress = createProgress(ctx, `instances (${fleet.instances.length})`);
      let results;
      try {
        results = await createFleet(fleet, {
          base: mergeRequests(config.values, flags),
          concurrency: jobs,
          dryRun,
          diskOnly,
          runner,
          steps: defaultSteps,
          cwd,
          signal: ctx.signal,
          onProgress: (p) => progress.update(p),
          onStep,
        });
      } finally {
        progress.done();
      }
      const ok = results.filter((r) => r.ok);
      const failed = results.filter((r) => !r.ok);
      if (nsupdate !== undefined && !dryRun && ok.length > 0) {
        await writeNsupdate(nsupdate, ok.map((r) => ({ host: r.result.plan.spec.host, domain: r.result.plan.spec.domain, ip: r.result.plan.spec.ip })), nsupdateServer);
      }
      if (ctx.json) {
        printJson(ctx, {
          succeeded: ok.map((r) => resultJson(r.result)),
          failed: failed.map((r) => ({ host: r.host, code: r.error.code, message: r.error.message })),
        });
      } else {
        for (const r of results) {
          if (r.ok) ctx.stdout.write(`ok     ${r.host}: ${r.result.outcome === 'planned' ? 'plan valid' : r.result.outcome === 'disk' ? `disk ${r.result.disk}` : `started (MAC ${r.result.plan.mac})`}\n`);
          else ctx.stdout.write(`FAILED ${r.host}: ${r.error.message} [${r.error.code}]\n`);
        }
        ctx.stdout.write(`${ok.length} of ${results.length} instances ${dryRun ? 'validated' : 'created'}${ok.length ? `: ${ok.map((r) => r.host).join(', ')}` : ''}\n`);
      }
      if (failed.some((r) => r.error.code === 'E_ABORTED')) return 130;
      return failed.length === 0 ? 0 : 1;
    }

    const [ip, host] = args.positionals as [string, string];
    // Validate everything before any work — the request and the nsupdate file and server — and
    // report every problem at once (exit 2).
    const problems: DiskwrightError[] = [];
    let spec: InstanceSpec | undefined;
    try {
      spec = validateInstanceRequest(mergeRequests(config.values, flags, { ip, host }), { cwd });
    } catch (error) {
      if (!(error instanceof DiskwrightError)) throw error;
      problems.push(error);
    }
    problems.push(...(await nsupdateProblems(nsupdate, nsupdateServer, dryRun)));
    if (problems.length === 1) throw problems[0]!;
    if (problems.length > 1) {
      const lines = problems.flatMap((p) => p.message.split('\n  - ').filter((l) => !/^\d+ problems with instance/.test(l)));
      throw new InvalidArgumentError(`${lines.length} problems with instance ${host}:\n  - ${lines.join('\n  - ')}`, { hint: 'fix them all and run again; nothing was written' });
    }
    if (!spec) throw new Error('unreachable: no spec and no problem');
    if (!dryRun) {
      noteLeaves(ctx, `no ${spec.diskPath} written`);
      noteLeaves(ctx, `${spec.template} unchanged`);
    }
    const progress = createProgress(ctx, `copy ${spec.host}`);
    let result: InstanceResult;
    try {
      result = await createInstance({ spec, steps: defaultSteps, runner, dryRun, diskOnly, signal: ctx.signal, onProgress: (p) => progress.update(p), onStep });
    } finally {
      progress.done();
    }
    if (nsupdate !== undefined && !dryRun) await writeNsupdate(nsupdate, [{ host: spec.host, domain: spec.domain, ip: spec.ip }], nsupdateServer);
    if (ctx.json) printJson(ctx, resultJson(result));
    else printResultText(ctx, result);
    return 0;
  },
};

const list: Command = {
  name: 'instance list',
  summary: 'list libvirt domains with their state, MACs and disks',
  help: `Usage: diskwright instance list [--connect URI] [--json]
       diskwright instance list --bases [--images-dir DIR] [--prune] [--json]

Lists the domains on the libvirt connection (virsh list --all, domstate, domiflist, domblklist).
With --bases, lists the shared grown layers of thin instances in DIR/.diskwright-bases instead:
each one's template, size, the instances over it and its state — in-use, building (another
process holds it) or stale (no instance and no process uses it: left by a killed create; it
keeps its template read-only). --prune removes the stale ones.

Options:
      --connect URI      libvirt URI (default: virsh's default)
${URI_PARAMS_HELP}
      --bases            list the shared grown layers, not the domains
      --images-dir DIR   where they are (default: instance create's, /var/lib/libvirt/images)
      --prune            with --bases: remove the stale layers (under their lock)
      --json             [{name, state, macs, disks: [{type, device, target, source}]}];
                         with --bases [{path, template, virtualSize, allocated, instances, state, removed}]

Examples:
  diskwright instance list --connect qemu:///system
  diskwright instance list --bases --images-dir ./images --prune
`,
  options: { connect: { type: 'string' }, 'allow-uri-params': { type: 'boolean' }, bases: { type: 'boolean' }, 'images-dir': { type: 'string' }, prune: { type: 'boolean' } },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new DiskwrightError('E_USAGE', 'instance list: takes no arguments', { hint: 'diskwright instance list [--connect URI]' });
    if (flag(args, 'bases')) return listBases(args, ctx);
    if (flag(args, 'prune') || stringOption(args, 'images-dir') !== undefined) throw new DiskwrightError('E_USAGE', 'instance list: --prune and --images-dir go with --bases', { hint: 'diskwright instance list --bases --images-dir DIR --prune' });
    const connect = stringOption(args, 'connect');
    checkConnect(args, [['--connect', connect]]);
    const domains = await listInstances({ runner: runnerFor(ctx), signal: ctx.signal, ...(connect !== undefined ? { connect } : {}) });
    if (ctx.json) {
      printJson(ctx, domains);
      return 0;
    }
    if (domains.length === 0) {
      ctx.stdout.write('no domains\n');
      return 0;
    }
    const width = Math.max(4, ...domains.map((d) => d.name.length));
    ctx.stdout.write(`${'NAME'.padEnd(width)}  ${'STATE'.padEnd(10)}  ${'MAC'.padEnd(17)}  DISKS\n`);
    for (const d of domains) {
      const disks = d.disks.filter((k) => k.device === 'disk').map((k) => k.source).join(', ');
      ctx.stdout.write(`${d.name.padEnd(width)}  ${d.state.padEnd(10)}  ${(d.macs.join(',') || '-').padEnd(17)}  ${disks || '-'}\n`);
    }
    return 0;
  },
};

/** `instance list --bases`: the shared grown layers of an images directory, stale ones pruned on request. */
async function listBases(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const config = await loadConfig(ctx.env, process.cwd());
  const dir = resolve(stringOption(args, 'images-dir') ?? config.values.imagesDir ?? '/var/lib/libvirt/images');
  const removed = new Set(flag(args, 'prune') ? await pruneStaleBases(dir) : []);
  const bases = listSharedBases(dir);
  const shown = [...bases, ...[...removed].map((path) => ({ path, template: undefined, virtualSize: undefined, allocated: 0, instances: [], state: 'stale' as const }))];
  shown.sort((a, b) => (a.path < b.path ? -1 : 1));
  if (ctx.json) {
    printJson(ctx, shown.map((b) => ({ ...b, template: b.template ?? null, virtualSize: b.virtualSize ?? null, removed: removed.has(b.path) })));
    return 0;
  }
  if (shown.length === 0) {
    ctx.stdout.write(`no shared grown layers in ${dir}\n`);
    return 0;
  }
  ctx.stdout.write(`${'STATE'.padEnd(8)}  ${'INSTANCES'.padEnd(9)}  ${'SIZE'.padEnd(9)}  LAYER (TEMPLATE)\n`);
  for (const b of shown) {
    const state = removed.has(b.path) ? 'removed' : b.state;
    const size = b.virtualSize === undefined ? '-' : formatBytes(b.virtualSize);
    ctx.stdout.write(`${state.padEnd(8)}  ${String(b.instances.length).padEnd(9)}  ${size.padEnd(9)}  ${b.path}${b.template ? ` (${b.template})` : ''}\n`);
  }
  const stale = shown.filter((b) => b.state === 'stale' && !removed.has(b.path)).length;
  if (stale > 0) ctx.stdout.write(`${stale} stale layer(s): \`diskwright instance list --bases --images-dir ${dir} --prune\` removes them\n`);
  return 0;
}

const destroy: Command = {
  name: 'instance destroy',
  summary: 'power off and undefine a domain, removing its HOST-disk0 disk',
  help: `Usage: diskwright instance destroy HOST [--keep-disk] [--connect URI] [--json]

Powers HOST off if it runs (virsh destroy), undefines it (virsh undefine) and removes its
HOST-disk0 (or HOST-disk0.qcow2) disk (virsh vol-delete, or the local file on a local
connection). Other disks of the domain (other names, CD-ROMs) are never removed, nor the template
a thin qcow2 disk was made over (it stops being listed as one of the template's dependents).

Options:
      --keep-disk     keep the disk
      --connect URI   libvirt URI
${URI_PARAMS_HELP}
      --json          {host, stopped, removedDisks, keptDisks}

Example:
  diskwright instance destroy jgoulah
`,
  options: { 'keep-disk': { type: 'boolean' }, connect: { type: 'string' }, 'allow-uri-params': { type: 'boolean' } },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new DiskwrightError('E_USAGE', 'instance destroy: expected exactly one HOST', { hint: 'diskwright instance destroy jgoulah' });
    const connect = stringOption(args, 'connect');
    checkConnect(args, [['--connect', connect]]);
    const result = await destroyInstance(args.positionals[0]!, {
      runner: runnerFor(ctx),
      signal: ctx.signal,
      keepDisk: flag(args, 'keep-disk'),
      ...(connect !== undefined ? { connect } : {}),
    });
    if (ctx.json) {
      printJson(ctx, result);
    } else {
      ctx.stdout.write(
        `instance ${result.host} ${result.stopped ? 'stopped and ' : ''}undefined${result.removedDisks.length ? `; removed ${result.removedDisks.join(', ')}` : ''}${result.keptDisks.length ? `; kept ${result.keptDisks.join(', ')}` : ''}\n`,
      );
    }
    return 0;
  },
};

/** CLI commands of this area. */
export const commands: readonly Command[] = [create, list, destroy];
