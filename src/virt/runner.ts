import { execa } from 'execa';
import { AbortedError, DiskwrightError, throwIfAborted } from '../errors.js';

/** The two libvirt front-ends diskwright calls. */
export type VirtTool = 'virt-install' | 'virsh';

export interface VirtResult {
  /** The tool's exit code; 127 when it is not installed. */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a libvirt tool with an argv array. Injectable so tests can record calls; the real one is
 * {@link execaRunner}. Must reject with an `E_ABORTED` error when `signal` fires.
 */
export type VirtRunner = (tool: VirtTool, argv: readonly string[], options?: { readonly signal?: AbortSignal }) => Promise<VirtResult>;

/** Package that provides each tool (for hints). */
const PACKAGE: Record<VirtTool, string> = { 'virt-install': 'virtinst', virsh: 'libvirt-clients' };

/** Programs to run instead of `virt-install`/`virsh` (absolute paths; e.g. a wrapper). */
export interface RunnerPrograms {
  readonly virtInstall?: string | undefined;
  readonly virsh?: string | undefined;
}

/**
 * The real runner: execa, argv array, no shell, C locale for parseable output. `programs` may
 * name other executables (the CLI takes them from `DISKWRIGHT_VIRT_INSTALL` / `DISKWRIGHT_VIRSH`).
 */
export function createExecaRunner(programs: RunnerPrograms = {}): VirtRunner {
  const runner: VirtRunner = async (tool, argv, options = {}) => {
    throwIfAborted(options.signal);
    const program = (tool === 'virsh' ? programs.virsh : programs.virtInstall) || tool;
    const result = await execa(program, [...argv], {
      reject: false,
      shell: false,
      stdin: 'ignore',
      env: { LC_ALL: 'C' },
      ...(options.signal ? { cancelSignal: options.signal } : {}),
    });
    if (result.isCanceled) throw new AbortedError(`${tool} aborted`, { cause: options.signal?.reason });
    const code = (result as { code?: string }).code;
    if (result.exitCode === undefined && code === 'ENOENT') {
      return { exitCode: 127, stdout: '', stderr: `${tool}: command not found (install the ${PACKAGE[tool]} package)` };
    }
    return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
  };
  REAL_HOST_RUNNERS.add(runner);
  return runner;
}

/** Runners that run the real tools on this host (so this host's /dev/kvm is the one they use). */
const REAL_HOST_RUNNERS = new WeakSet<VirtRunner>();

/** True for a runner from {@link createExecaRunner}; a test's fake libvirt fakes the host too. */
export function runsOnThisHost(runner: VirtRunner): boolean {
  return REAL_HOST_RUNNERS.has(runner);
}

/** The runner for the real `virt-install` and `virsh` on PATH. */
export const execaRunner: VirtRunner = createExecaRunner();

/** Longest tool message kept in an error (libvirt can print whole XML documents). */
const MAX_ERROR_TEXT = 600;

/**
 * A tool's error output on one line. virsh prints the reason on the line after the summary
 * (`error: Failed to start domain 'x'` / `error: operation failed: …`), so every `error:` line is
 * kept, joined with `:` after one `error:`; without one, the first non-empty line.
 */
export function firstErrorLine(result: VirtResult): string {
  const lines = `${result.stderr}\n${result.stdout}`.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const errors = [...new Set(lines.filter((l) => /^error\b/i.test(l)).map((l) => l.replace(/^error:?\s*/i, '')).filter((l) => l.length > 0))];
  const text = errors.length > 0 ? `error: ${errors.join(': ')}` : (lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `exit code ${result.exitCode}`);
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text;
}

/** Runs a tool and throws `E_VIRT` (naming what failed and the tool's message) on a non-zero exit. */
export async function runVirtChecked(
  runner: VirtRunner,
  tool: VirtTool,
  argv: readonly string[],
  what: string,
  signal?: AbortSignal,
): Promise<VirtResult> {
  const result = await runner(tool, argv, signal ? { signal } : {});
  if (result.exitCode !== 0) {
    throw new DiskwrightError('E_VIRT', `${what} failed: ${firstErrorLine(result)}`, {
      actual: result.exitCode,
      hint: result.exitCode === 127 ? `install the ${PACKAGE[tool]} package` : undefined,
    });
  }
  return result;
}
