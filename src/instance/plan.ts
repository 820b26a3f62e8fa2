import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DiskwrightError } from '../errors.js';
import { resolveFormat } from '../disk/open.js';
import { Qcow2Disk } from '../disk/qcow2/index.js';
import { recordedBackingIdentity } from '../disk/backing-identity.js';
import {
  buildVirshNetInfoArgs,
  buildVirshStartArgs,
  buildVirshVolCreateAsArgs,
  buildVirshVolUploadArgs,
  buildVirtInstallArgs,
  domainExists,
  isLibvirtReachable,
  usedMacs,
  assertSafePath,
  firstErrorLine,
  parseKernelArgs,
  destroyCommand,
  kvmProblem,
  runsOnThisHost,
  type VirtRunner,
} from '../virt/index.js';
import { randomUUID } from 'node:crypto';
import { prepareCustomization, wantsTemplateFacts, type Customization } from './customize.js';
import { randomMac } from './mac.js';
import { buildKernelArgs, instanceDiskName, placeholderValues, type InstanceSpec } from './spec.js';
import type { PipelineSteps, TemplateFileEntry } from './steps.js';

/** Placeholders the pipeline can fill (the contract's five plus the derived prefix length). */
export const FILLABLE_PLACEHOLDERS = ['ADDRESS-TMPL', 'NETMASK-TMPL', 'GATEWAY-TMPL', 'HOSTNAME-TMPL', 'NAMESERVER-TMPL', 'PREFIX-TMPL', 'SHORTNAME-TMPL', 'FSUUID-TMPL'] as const;
/** Placeholders a template must carry somewhere: without them the instance has no identity. */
export const REQUIRED_PLACEHOLDERS = ['ADDRESS-TMPL', 'HOSTNAME-TMPL'] as const;

/** Pipeline step names, in order; error messages name them. */
export const STEPS = ['validate', 'copy', 'overlay', 'preen', 'resize', 'render', 'customize', 'check', 'flatten', 'rename', 'upload', 'define', 'start'] as const;
export type StepName = (typeof STEPS)[number];

/** Everything decided before any byte is written. */
export interface InstancePlan {
  readonly spec: InstanceSpec;
  readonly mac: string;
  readonly kernel: string;
  readonly initrd?: string;
  readonly kernelArgs: readonly string[];
  readonly templateBytes: number;
  readonly files: readonly TemplateFileEntry[];
  readonly values: Readonly<Record<string, string>>;
  /** The checked per-instance customization (key, password hash, zone, first-boot script). */
  readonly customization: Customization;
  /** The new filesystem UUID (`--fs-uuid new`), set with tune2fs in the customize step. */
  readonly newFsUuid?: string;
  /** `reachable`: names and MACs were checked against libvirt; `unreachable`: they could not be. */
  readonly libvirt: 'reachable' | 'unreachable';
  readonly steps: readonly StepName[];
  /** The final disk: a host file, or a pool volume. */
  readonly disk: { readonly path: string } | { readonly pool: string; readonly volume: string };
  readonly virtInstall: readonly string[];
  readonly virshStart: readonly string[];
  readonly volCreate?: readonly string[];
  readonly volUpload?: readonly string[];
}

export interface PlanOptions {
  readonly runner: VirtRunner;
  readonly steps: Pick<PipelineSteps, 'readManifest' | 'readSuperblock' | 'inspectTemplate'>;
  /** libvirt must be reachable (a full create); otherwise it is checked when it answers. */
  readonly requireLibvirt: boolean;
  /** MACs already taken by other instances of the same run (fleet). */
  readonly reservedMacs?: Set<string>;
  readonly signal?: AbortSignal;
}

function isLocalConnection(connect: string | undefined): boolean {
  return connect === undefined || /^[a-z0-9+]+:\/\/\/[^/]/.test(connect);
}

async function fileSize(path: string, what: string, hint: string): Promise<number> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new DiskwrightError('E_INVALID_ARGUMENT', `${what} ${path} is not a regular file`, { path });
    return info.size;
  } catch (error) {
    if (error instanceof DiskwrightError) throw error;
    throw new DiskwrightError('E_NOT_FOUND', `${what} ${path} does not exist`, { path, hint, cause: error });
  }
}

function checkManifestFiles(files: readonly TemplateFileEntry[], template: string): void {
  const present = new Set<string>();
  for (const file of files) {
    if (typeof file.path !== 'string' || !file.path.startsWith('/') || file.path.split('/').includes('..')) {
      throw new DiskwrightError('E_TEMPLATE', `template manifest lists an unsafe path ${JSON.stringify(file.path)}`, { path: template });
    }
    for (const name of file.placeholders) {
      if (!(FILLABLE_PLACEHOLDERS as readonly string[]).includes(name)) {
        throw new DiskwrightError('E_TEMPLATE', `template manifest lists placeholder ${JSON.stringify(name)} in ${file.path}, which diskwright cannot fill`, {
          path: template,
          hint: `fillable placeholders: ${FILLABLE_PLACEHOLDERS.join(', ')}`,
        });
      }
      present.add(name);
    }
  }
  const missing = REQUIRED_PLACEHOLDERS.filter((p) => !present.has(p));
  if (missing.length > 0) {
    throw new DiskwrightError('E_TEMPLATE', `template ${template} carries no ${missing.join(' or ')} placeholder, so the instance would have no identity`, {
      path: template,
      hint: 'make the template with `diskwright template make` (it writes the placeholders and the manifest)',
    });
  }
}

/**
 * The size of the disk the template holds: the file's for a raw template, the virtual size for a
 * qcow2 one (as `template make -O qcow2` or `convert` write it). A qcow2 template with a backing
 * file (docs/qcow2.md "qcow2 templates"):
 * - is followed only when diskwright recorded the file as its qcow2 (its chain is then trusted,
 *   "The backing-file rule"); a probed one is refused here, before any step opens it;
 * - a thin instance over it depends on every layer below it, but only the template is listed as
 *   its dependent and identity-checked: so the template must itself record its backing file's
 *   identity (a thin overlay diskwright made), which every open of the chain checks. Otherwise a
 *   change of the template's backing file would show through the instance unnoticed.
 */
function templateVirtualSize(template: string, fileBytes: number, diskKind: InstanceSpec['diskKind']): number {
  const resolved = resolveFormat(template, undefined);
  if (resolved.format !== 'qcow2') return fileBytes;
  const { size, facts } = Qcow2Disk.inspect(template);
  if (facts.backingFile === undefined) return size;
  const flatten = `\`diskwright convert --format qcow2 ${template} TEMPLATE.qcow2 -O qcow2\` and copy ${template}.diskwright.json beside it`;
  if (resolved.source === 'probed') {
    throw new DiskwrightError('E_UNTRUSTED_BACKING', `template ${template} is a qcow2 with backing file ${facts.backingFile}, which diskwright did not record`, {
      path: template,
      hint: `flatten it into a template without one: ${flatten}`,
    });
  }
  if (diskKind === 'thin' && recordedBackingIdentity(template) === undefined) {
    throw new DiskwrightError('E_TEMPLATE', `template ${template} has a backing file (${facts.backingFile}) whose changes a thin instance could not detect`, {
      path: template,
      hint: `make a raw or --standalone instance (they copy the chain), or flatten the template: ${flatten}`,
    });
  }
  return size;
}

/**
 * Checks everything that can be checked without writing: the template, its manifest and
 * superblock, the size, the target, the kernel, libvirt (domain name free, MACs in use), and
 * builds the exact argv. `--dry-run` prints this; `createInstance` executes it.
 */
export async function planInstance(spec: InstanceSpec, options: PlanOptions): Promise<InstancePlan> {
  const { runner, signal } = options;
  const fileBytes = await fileSize(spec.template, 'template', 'pass --template PATH (made by `diskwright template make`)');
  const templateBytes = templateVirtualSize(spec.template, fileBytes, spec.diskKind);
  const manifest = await options.steps.readManifest(spec.template);
  if (!Array.isArray(manifest.files)) throw new DiskwrightError('E_TEMPLATE', `template manifest of ${spec.template} has no files list`, { path: spec.template });
  checkManifestFiles(manifest.files, spec.template);

  const superblock = await options.steps.readSuperblock(spec.template);
  if (superblock.needsRecovery) {
    throw new DiskwrightError('E_NEEDS_RECOVERY', `template ${spec.template} has a journal that needs recovery`, {
      path: spec.template,
      hint: `run \`diskwright fsck --fix ${spec.template}\` first; diskwright never replays a journal silently`,
    });
  }
  const fsBytes = Number(superblock.blocksCount) * superblock.blockSize;
  const minimum = Math.max(templateBytes, fsBytes);
  if (spec.diskBytes < minimum) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', `--disk ${spec.diskBytes} bytes is smaller than the template (${minimum} bytes); instances can only grow`, {
      expected: minimum,
      actual: spec.diskBytes,
    });
  }

  const kernel = spec.kernel ?? manifest.kernel?.kernel;
  const initrd = spec.kernel !== undefined ? spec.initrd : manifest.kernel?.initrd;
  if (kernel === undefined) {
    throw new DiskwrightError('E_TEMPLATE', `template ${spec.template} records no kernel`, {
      hint: 'pass --kernel PATH [--initrd PATH], or make the template with `--kernel-dir`',
    });
  }
  assertSafePath(kernel, 'kernel');
  if (initrd !== undefined) assertSafePath(initrd, 'initrd');
  if (isLocalConnection(spec.connect)) {
    await fileSize(kernel, 'kernel', 'pass --kernel PATH or re-extract it with `diskwright kernel`');
    if (initrd !== undefined) await fileSize(initrd, 'initrd', 'pass --initrd PATH or re-extract it with `diskwright kernel`');
  }

  const imagesDir = dirname(spec.diskPath);
  const dirIsDirectory = await stat(imagesDir).then((info) => info.isDirectory(), () => undefined);
  if (dirIsDirectory !== true) {
    throw new DiskwrightError(dirIsDirectory === undefined ? 'E_NOT_FOUND' : 'E_INVALID_ARGUMENT', `images directory ${imagesDir} ${dirIsDirectory === undefined ? 'does not exist' : 'is not a directory'}`, {
      path: imagesDir,
      hint: `create it (\`mkdir -p ${imagesDir}\`) or pass --images-dir DIR`,
    });
  }
  // HOST-disk0 and HOST-disk0.qcow2 are the same instance's disk: neither may exist.
  const names = [...new Set([spec.diskPath, join(imagesDir, instanceDiskName(spec.host, 'raw')), join(imagesDir, instanceDiskName(spec.host, 'thin'))])];
  const existing = (await Promise.all(names.map((path) => stat(path).then(() => path, () => undefined)))).find((path) => path !== undefined);
  if (existing !== undefined) {
    throw new DiskwrightError('E_EXISTS', `disk ${existing} already exists`, {
      path: existing,
      hint: `pick another host name or remove it (\`${destroyCommand(spec.host, spec.connect === undefined ? {} : { connect: spec.connect })}\`)`,
    });
  }

  const connect = spec.connect === undefined ? {} : { connect: spec.connect };
  const reachable = await isLibvirtReachable(runner, connect, signal);
  if (!reachable && options.requireLibvirt) {
    throw new DiskwrightError('E_VIRT', `libvirt is not reachable${spec.connect ? ` at ${spec.connect}` : ''} (virsh list failed)`, {
      hint: 'start libvirtd, pass --connect URI, or use --disk-only to build the disk without defining a domain',
    });
  }
  if (options.requireLibvirt) {
    const version = await runner('virt-install', ['--version'], signal ? { signal } : {});
    if (version.exitCode !== 0) {
      throw new DiskwrightError('E_VIRT', `virt-install is not available: ${firstErrorLine(version)}`, {
        hint: 'install virtinst, or use --disk-only to build the disk and print the commands',
      });
    }
  }
  if (options.requireLibvirt && (spec.virtType === undefined || spec.virtType === 'kvm')) {
    // Found before anything is defined: otherwise virt-install defines the domain and virsh start fails.
    const problem = await kvmProblem(runner, { ...connect, local: isLocalConnection(spec.connect) && runsOnThisHost(runner), ...(signal ? { signal } : {}) });
    if (problem !== undefined) {
      throw new DiskwrightError('E_VIRT', `this host has no usable KVM: ${problem}`, {
        hint: `use QEMU's emulation instead: add \`--virt-type qemu --cpu max\`${spec.connect ? ` (with --connect ${spec.connect})` : ''}; guests run several times slower`,
      });
    }
  }
  const taken = reachable ? await usedMacs(runner, connect, signal) : new Set<string>();
  if (reachable && (await domainExists(runner, spec.host, connect, signal))) {
    throw new DiskwrightError('E_EXISTS', `a libvirt domain named ${spec.host} is already defined`, {
      hint: `pick another host name or remove it with \`${destroyCommand(spec.host, connect)}\``,
    });
  }
  if (reachable && spec.network.kind === 'network') {
    // virt-install --import does not check the network; without this, virsh start would fail after
    // the disk was built and the domain defined.
    const info = await runner('virsh', buildVirshNetInfoArgs(spec.network.name, connect), signal ? { signal } : {});
    if (info.exitCode !== 0) {
      throw new DiskwrightError('E_NOT_FOUND', `libvirt network ${spec.network.name} is not defined${spec.connect ? ` at ${spec.connect}` : ''}: ${firstErrorLine(info)}`, {
        hint: 'list them with `virsh net-list --all`, or use --network user / --bridge BR',
      });
    }
    if (/^Active:\s+no\b/m.test(info.stdout)) {
      throw new DiskwrightError('E_VIRT', `libvirt network ${spec.network.name} is not active`, {
        hint: `start it with \`virsh${spec.connect ? ` --connect ${spec.connect}` : ''} net-start ${spec.network.name}\``,
      });
    }
  }
  for (const mac of options.reservedMacs ?? []) taken.add(mac);
  if (spec.mac !== undefined && taken.has(spec.mac)) {
    throw new DiskwrightError('E_EXISTS', `MAC ${spec.mac} is already used by another domain`, { hint: 'omit --mac to get a fresh random one' });
  }
  const mac = spec.mac ?? randomMac(taken);
  options.reservedMacs?.add(mac);

  const customization = await prepareCustomization(
    spec.customize,
    wantsTemplateFacts(spec.customize) ? await options.steps.inspectTemplate(spec.template, spec.customize, signal) : undefined,
    spec.template,
  );
  const templateUuid = manifest.filesystem?.uuid;
  const newFsUuid = spec.newFsUuid ? randomUUID() : undefined;
  const fsUuid = newFsUuid ?? templateUuid;
  if (fsUuid === undefined && manifest.files.some((f) => f.placeholders.includes('FSUUID-TMPL'))) {
    throw new DiskwrightError('E_TEMPLATE', `template manifest of ${spec.template} records no filesystem UUID for FSUUID-TMPL`, { hint: 'remake the template with `diskwright template make`' });
  }
  // The template's arguments (net.ifnames=0 for eth0, noresume) go before the user's own.
  const templateArgs = manifest.kernelArgs === undefined ? [] : parseKernelArgs(manifest.kernelArgs.join(' '), 'template kernelArgs');
  const kernelArgs = [...new Set([...buildKernelArgs({ ...spec, extraKernelArgs: [] }), ...templateArgs, ...spec.extraKernelArgs])];
  const volume = basename(spec.diskPath);
  const diskFormat = spec.diskKind === 'raw' ? 'raw' : 'qcow2';
  const disk = spec.pool === undefined ? { path: spec.diskPath } : { pool: spec.pool, volume };
  const virtInstall = buildVirtInstallArgs({
    name: spec.host,
    ramMiB: spec.ramMiB,
    vcpus: spec.vcpus,
    cpu: spec.cpu,
    disk,
    diskFormat,
    network: spec.network,
    mac,
    kernel,
    ...(initrd !== undefined ? { initrd } : {}),
    kernelArgs,
    ...(spec.os !== undefined ? { os: spec.os } : {}),
    ...connect,
    ...(spec.virtType !== undefined ? { virtType: spec.virtType } : {}),
    ...(spec.serialLog !== undefined ? { serialLog: spec.serialLog } : {}),
    graphics: spec.graphics,
    cpuset: spec.cpuset,
  });
  const steps: StepName[] = ['validate', spec.diskKind === 'raw' ? 'copy' : 'overlay', 'preen', 'resize', 'render', 'customize', 'check', ...(spec.diskKind === 'standalone' ? ['flatten' as const] : []), 'rename'];
  if (spec.pool !== undefined) steps.push('upload');
  steps.push('define', 'start');
  return {
    spec,
    mac,
    kernel,
    ...(initrd !== undefined ? { initrd } : {}),
    kernelArgs,
    templateBytes,
    files: manifest.files,
    values: { ...placeholderValues(spec), 'PREFIX-TMPL': String(spec.prefix), ...(fsUuid !== undefined ? { 'FSUUID-TMPL': fsUuid } : {}) },
    customization,
    ...(newFsUuid !== undefined ? { newFsUuid } : {}),
    libvirt: reachable ? 'reachable' : 'unreachable',
    steps,
    disk,
    virtInstall,
    virshStart: buildVirshStartArgs(spec.host, connect),
    ...(spec.pool !== undefined
      ? {
          volCreate: buildVirshVolCreateAsArgs(spec.pool, volume, spec.diskBytes, { ...connect, format: diskFormat }),
          volUpload: buildVirshVolUploadArgs(spec.pool, volume, spec.diskPath, connect),
        }
      : {}),
  };
}

export { isLocalConnection };
