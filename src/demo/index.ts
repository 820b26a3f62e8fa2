export { encodeCpio, type CpioEntry } from './cpio.js';
export { isStaticElf64 } from './elf.js';
export {
  BOOT_MODULES, KERNEL_META_PACKAGE, ensureBootKit, defaultBootCacheDir, parseKernelPackage, parseShowDepends,
  initramfsEntries, readStaticBusybox, busyboxPath, fixturePath, type BootKit, type BootKitOptions,
} from './bootkit.js';
export { buildDemoRoot, demoRootSource, type DemoRootOptions } from './root-tree.js';
export { parseGuestConsole, verifyGuestIdentity, type GuestReport, type ExpectedIdentity } from './console.js';
export {
  QEMU_BINARY, BOOT_EXTRA_KERNEL_ARGS, DEFAULT_BOOT_TIMEOUT_MS, buildQemuArgs, qemuOptionValue, qemuAvailable, bootDisk,
  type QemuBootOptions, type BootResult,
} from './qemu.js';
export { seedLayout, SEED_DISK_ID, type SeedLayout } from './seed.js';
export { runDemo, DEMO_INSTANCE, DEMO_ROOT_BYTES, DEMO_SHOWN_FILES, type DemoOptions, type DemoReporter, type DemoResult, type DemoBootOutcome } from './demo.js';
