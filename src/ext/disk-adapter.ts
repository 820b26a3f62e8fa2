import type { Disk } from '../disk/index.js';
import type { ByteAccess } from './inode-times.js';

/**
 * A Disk in the shape the `ext2fs` package expects of its disk (async, node-fs-like argument
 * order), plus the synchronous {@link ByteAccess} our own inode patching uses.
 */
export class Ext2fsDiskAdapter implements ByteAccess {
  writes = 0;
  /**
   * The first error the Disk threw (a truncated qcow2, an EIO): libext2fs sees only an errcode, so
   * the session reports this instead of "node_ext2fs_mount UNKNOWN (…)" (errors-map.ts).
   */
  ioError: unknown;
  constructor(readonly disk: Disk) {}

  readInto(buffer: Buffer, bufferOffset: number, length: number, position: number): void {
    try {
      this.disk.read(buffer.subarray(bufferOffset, bufferOffset + length), position);
    } catch (error) {
      this.ioError ??= error;
      throw error;
    }
  }

  writeFrom(buffer: Uint8Array, bufferOffset: number, length: number, position: number): void {
    this.writes += 1;
    try {
      this.disk.write(buffer.subarray(bufferOffset, bufferOffset + length), position);
    } catch (error) {
      this.ioError ??= error;
      throw error;
    }
  }

  async read(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Buffer }> {
    this.readInto(buffer, bufferOffset, length, position);
    return { bytesRead: length, buffer };
  }

  async write(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<{ bytesWritten: number; buffer: Buffer }> {
    this.writeFrom(buffer, bufferOffset, length, position);
    return { bytesWritten: length, buffer };
  }

  async flush(): Promise<void> {
    // The overlay is committed as a whole after the session.
  }

  async discard(): Promise<void> {
    // Freed blocks keep their old bytes, as on a disk without TRIM (and as host e2fsprogs leaves them).
  }
}
