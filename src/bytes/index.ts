export { crc32 } from './crc32.js';
export { requireBytes, u8, u16le, u32le, u64le, writeU16le, writeU32le, writeU64le } from './reader.js';
export { parseSize, formatBytes } from './size.js';
