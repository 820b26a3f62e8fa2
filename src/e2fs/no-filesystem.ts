import { openImage, type Disk, type DiskFormat } from '../disk/index.js';
import { DiskwrightError } from '../errors.js';
import { readDiskPartitionTable } from '../partition/index.js';
import { EXT_MAGIC, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE } from '../extmeta/index.js';

/** s_magic's offset in the superblock (ext4 disk layout, "The Super Block"). */
const MAGIC_OFFSET = 0x38;

/** Other contents recognised by their signature (util-linux libblkid's offsets), to say what is there. */
const SIGNATURES: readonly { readonly what: string; readonly at: number; readonly bytes: string }[] = [
  { what: 'Linux swap space', at: 4096 - 10, bytes: 'SWAPSPACE2' },
  { what: 'Linux swap space', at: 4096 - 10, bytes: 'SWAP-SPACE' },
  { what: 'an XFS filesystem', at: 0, bytes: 'XFSB' },
  { what: 'a LUKS encrypted volume', at: 0, bytes: 'LUKS\u00ba\u00be' },
  { what: 'a squashfs filesystem', at: 0, bytes: 'hsqs' },
  { what: 'a btrfs filesystem', at: 0x10040, bytes: '_BHRfS_M' },
  { what: 'an ISO 9660 image', at: 0x8001, bytes: 'CD001' },
];

function readAt(disk: Disk, offset: number, length: number): Buffer | undefined {
  if (offset < 0 || offset + length > disk.size) return undefined;
  const bytes = Buffer.alloc(length);
  disk.read(bytes, offset);
  return bytes;
}

/** What a reader finds at `offset` of `disk` instead of an ext superblock, in words ('' when nothing known). */
function whatIsThere(disk: Disk, offset: number, wholeDisk: boolean): string {
  for (const signature of SIGNATURES) {
    const expected = Buffer.from(signature.bytes, 'latin1');
    const found = readAt(disk, offset + signature.at, expected.length);
    if (found?.equals(expected)) return `it holds ${signature.what}`;
  }
  if (!wholeDisk) return '';
  try {
    const table = readDiskPartitionTable(disk);
    const numbers = table.partitions.map((p) => p.number);
    if (numbers.length === 0) return `it holds an empty ${table.label} partition table`;
    return `it holds a ${table.label} partition table with partition${numbers.length > 1 ? 's' : ''} ${numbers.join(', ')}`;
  } catch {
    return '';
  }
}

/**
 * The error for "no ext2/3/4 filesystem at `offset` of `image`" in the user's terms — the file is
 * too small for a superblock there, or the magic is not there, and what is there instead (a
 * partition table and its partitions, swap, another filesystem) — with the command to run next.
 * Undefined when an ext superblock magic is there after all (the caller keeps the tool's message).
 */
export function explainMissingFilesystem(image: string, offset: number, options: { readonly format?: DiskFormat; readonly partition?: number } = {}): DiskwrightError | undefined {
  let disk: Disk;
  try {
    disk = openImage(image, { readOnly: true, ...(options.format ? { format: options.format } : {}) });
  } catch {
    return undefined;
  }
  try {
    const where = options.partition !== undefined ? `partition ${options.partition} of ${image}` : image;
    const at = offset + SUPERBLOCK_OFFSET;
    const base = { path: image, offset: at };
    if (at + SUPERBLOCK_SIZE > disk.size) {
      return new DiskwrightError('E_BAD_SIGNATURE', `no ext2/3/4 filesystem in ${where}: ${image} is only ${disk.size} bytes, too small for a superblock at byte ${at}`, {
        ...base,
        hint: 'an ext2/3/4 filesystem is at least 2048 bytes; check the image path (and --partition)',
      });
    }
    const magic = readAt(disk, at + MAGIC_OFFSET, 2)!.readUInt16LE(0);
    if (magic === EXT_MAGIC) return undefined;
    const there = whatIsThere(disk, offset, options.partition === undefined && offset === 0);
    const found = there ? `; ${there}` : ` (0x${magic.toString(16).padStart(4, '0')} where ext keeps 0xef53)`;
    const message = `no ext2/3/4 filesystem in ${where}: no superblock at byte ${at}${found}`;
    const hint = there.includes('partition table with')
      ? `name one with --partition N (\`diskwright partitions ${image}\` lists them)`
      : options.partition !== undefined
        ? `\`diskwright partitions ${image}\` lists the partitions and their types`
        : 'check the image path; for a disk image, pass --partition N (`diskwright partitions IMAGE` lists them)';
    return new DiskwrightError('E_BAD_SIGNATURE', message, { ...base, hint });
  } finally {
    disk.close();
  }
}
