/** ELF64 offsets (System V gABI, "ELF Header" and "Program Header"). */
const EI_CLASS = 4;
const ELFCLASS64 = 2;
const E_PHOFF = 0x20;
const E_PHENTSIZE = 0x36;
const E_PHNUM = 0x38;
const PT_INTERP = 3;
/** A real executable has a handful of program headers; more is not something we built. */
const MAX_PROGRAM_HEADERS = 256;

/**
 * True when `bytes` is a 64-bit ELF executable without a PT_INTERP program header, i.e. it runs
 * without a dynamic loader (what an initramfs or a tiny root tree needs from busybox).
 */
export function isStaticElf64(bytes: Uint8Array): boolean {
  if (bytes.length < 0x40) return false;
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) return false;
  if (bytes[EI_CLASS] !== ELFCLASS64) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(view.getBigUint64(E_PHOFF, true));
  const phentsize = view.getUint16(E_PHENTSIZE, true);
  const phnum = view.getUint16(E_PHNUM, true);
  if (phnum > MAX_PROGRAM_HEADERS || phentsize < 4) return false;
  if (phoff + phnum * phentsize > bytes.length) return false;
  for (let i = 0; i < phnum; i += 1) {
    if (view.getUint32(phoff + i * phentsize, true) === PT_INTERP) return false;
  }
  return true;
}
