import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { buildVirshKvmCapabilitiesArgs, type ConnectOptions } from './argv.js';
import { firstErrorLine, type VirtRunner } from './runner.js';

export interface KvmCheckOptions extends ConnectOptions {
  /**
   * Check this host's /dev/kvm too: the connection is local (qemu:///system, qemu:///session) and
   * the runner runs the real tools (default: {@link runsOnThisHost}).
   */
  readonly local: boolean;
  readonly signal?: AbortSignal;
  /** For tests: where the kernel lists loaded modules and the KVM device. */
  readonly sysModule?: string;
  readonly devKvm?: string;
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}

/**
 * Why this host cannot run KVM guests, or undefined when it can (as far as can be told before a
 * guest starts). Locally: no /dev/kvm, or a KVM that is kvm_pvm (a software hypervisor that
 * aborts `-cpu host` guests, see notes/boot-e2e); on any connection: libvirt's own
 * `virsh domcapabilities --virttype kvm` failing.
 */
export async function kvmProblem(runner: VirtRunner, options: KvmCheckOptions): Promise<string | undefined> {
  const sysModule = options.sysModule ?? '/sys/module';
  if (options.local) {
    const dev = options.devKvm ?? '/dev/kvm';
    if (!(await exists(dev))) return `${dev} does not exist (no KVM module loaded, or nested virtualization is off)`;
    if (await exists(join(sysModule, 'kvm_pvm'))) return 'its KVM is kvm_pvm, a software hypervisor on which `-cpu host` guests abort';
  }
  const result = await runner('virsh', buildVirshKvmCapabilitiesArgs(options.connect === undefined ? {} : { connect: options.connect }), options.signal ? { signal: options.signal } : {});
  if (result.exitCode !== 0) return `libvirt reports no KVM: ${firstErrorLine(result)}`;
  return undefined;
}
