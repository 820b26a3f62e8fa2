import { readFile, rm } from 'node:fs/promises';
import { execa } from 'execa';
import { DiskwrightError, throwIfAborted } from '../errors.js';

/** The QEMU the boot uses. */
export const QEMU_BINARY = 'qemu-system-x86_64';
/** Kernel args the boot adds to diskwright's: a panic exits QEMU (with -no-reboot), the NIC is eth0. */
export const BOOT_EXTRA_KERNEL_ARGS = ['panic=-1', 'net.ifnames=0'] as const;
/** Default hard limit for one boot; a healthy one takes 10–20 s under TCG on two busy cores. */
export const DEFAULT_BOOT_TIMEOUT_MS = 120_000;
/** How often the serial log is read while following a boot. */
const CONSOLE_POLL_MS = 250;
/** Kernel command lines longer than this are refused (x86 COMMAND_LINE_SIZE is 2048). */
const MAX_KERNEL_ARGS = 2048;

export interface QemuBootOptions {
  readonly kernel: string;
  readonly initrd?: string;
  readonly disk: string;
  /** The disk's format (default raw); never probed (a qcow2 overlay reads its raw backing file). */
  readonly format?: 'raw' | 'qcow2';
  /** The kernel command line (diskwright's args plus {@link BOOT_EXTRA_KERNEL_ARGS}). */
  readonly append: string;
  /** Serial console log file. */
  readonly log: string;
  readonly memoryMiB?: number;
}

/** QEMU option values separate sub-options with commas; a literal comma is written twice. */
export function qemuOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

function checkPath(name: string, path: string): void {
  if (path === '' || /[\0\n\r]/.test(path)) throw new DiskwrightError('E_INVALID_ARGUMENT', `${name} path ${JSON.stringify(path)} is not usable`);
}

/**
 * The argv (without the binary) of the smallest honest boot: TCG (the KVM here is not usable, see
 * notes/boot-e2e.md), q35, virtio disk and NIC, user networking restricted to the guest, serial
 * console to a file, no monitor, exit instead of reboot.
 */
export function buildQemuArgs(options: QemuBootOptions): string[] {
  checkPath('kernel', options.kernel);
  checkPath('disk', options.disk);
  checkPath('log', options.log);
  if (options.initrd !== undefined) checkPath('initrd', options.initrd);
  if (options.append.length > MAX_KERNEL_ARGS || /[\0\n\r]/.test(options.append)) {
    throw new DiskwrightError('E_INVALID_ARGUMENT', 'kernel command line is too long or holds control characters');
  }
  const memory = options.memoryMiB ?? 512;
  if (!Number.isInteger(memory) || memory < 64 || memory > 65536) throw new DiskwrightError('E_INVALID_ARGUMENT', `memory ${memory} MiB is out of range 64..65536`);
  return [
    '-accel', 'tcg',
    '-cpu', 'max',
    '-m', String(memory),
    '-machine', 'q35',
    '-kernel', options.kernel,
    ...(options.initrd === undefined ? [] : ['-initrd', options.initrd]),
    '-append', options.append,
    '-drive', `file=${qemuOptionValue(options.disk)},if=virtio,format=${options.format === 'qcow2' ? 'qcow2' : 'raw'}`,
    '-nic', 'user,model=virtio-net-pci,restrict=on',
    '-nographic',
    '-serial', `file:${options.log}`,
    '-monitor', 'none',
    '-no-reboot',
  ];
}

export interface BootResult {
  /** The serial console output. */
  readonly console: string;
  readonly seconds: number;
  readonly exitCode: number | undefined;
  readonly timedOut: boolean;
}

/** True when `qemu-system-x86_64` can be run. */
export async function qemuAvailable(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const result = await execa(QEMU_BINARY, ['--version'], { reject: false, env, stdin: 'ignore', timeout: 20_000 }).catch(() => undefined);
  return result !== undefined && result.exitCode === 0;
}

/**
 * Boots a disk and waits for the guest to power off, killing QEMU after `timeoutMs`. Returns the
 * console log even when the guest timed out; QEMU failing to start is an `E_BOOT` error.
 */
export async function bootDisk(
  options: QemuBootOptions & { timeoutMs?: number; signal?: AbortSignal; env?: NodeJS.ProcessEnv; onConsole?: (text: string) => void },
): Promise<BootResult> {
  throwIfAborted(options.signal);
  const args = buildQemuArgs(options);
  await rm(options.log, { force: true });
  const started = performance.now();
  const child = execa(QEMU_BINARY, args, {
    reject: false,
    stdin: 'ignore',
    timeout: options.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS,
    forceKillAfterDelay: 2000,
    cancelSignal: options.signal,
    env: options.env,
  });
  // Follow the serial log while the guest runs, so a display can show its lines live.
  let shown = 0;
  let following = Promise.resolve();
  const follow = (): Promise<void> =>
    (following = following.then(async () => {
      const text = await readFile(options.log, 'utf8').catch(() => '');
      if (text.length > shown) {
        options.onConsole?.(text.slice(shown));
        shown = text.length;
      }
    }));
  const timer = options.onConsole ? setInterval(() => void follow(), CONSOLE_POLL_MS) : undefined;
  const result = await child;
  if (timer) {
    clearInterval(timer);
    await follow();
  }
  const seconds = (performance.now() - started) / 1000;
  throwIfAborted(options.signal);
  const console = await readFile(options.log, 'utf8').catch(() => '');
  if (!result.timedOut && result.exitCode !== 0) {
    const detail = (result.stderr || result.message || '').trim().split('\n')[0] ?? '';
    throw new DiskwrightError('E_BOOT', `${QEMU_BINARY} exited with ${result.exitCode ?? result.signal ?? 'an error'}: ${detail}`, {
      hint: 'install qemu-system-x86 (the boot uses TCG, no KVM or root needed)',
    });
  }
  return { console, seconds, exitCode: result.exitCode, timedOut: result.timedOut === true };
}
