import { DconnectError } from '../../core/errors.js';
import { crc32c, crc32cU32 } from './crc32c.js';
import { hiLo, hi32, lo32, set16, set32, u16, u32 } from './le.js';
import type { Superblock } from './superblock.js';

/** bg_flags (docs.kernel.org/filesystems/ext4/group_descr.html). */
export const BG_INODE_UNINIT = 0x1;
export const BG_BLOCK_UNINIT = 0x2;

/** One block group's descriptor, decoded; `encode` writes it back into its bytes with a fresh checksum. */
export interface GroupDesc {
  group: number;
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  freeBlocks: number;
  freeInodes: number;
  usedDirs: number;
  flags: number;
  itableUnused: number;
  blockBitmapCsum: number;
  inodeBitmapCsum: number;
}

const CSUM_AT = 0x1e;

function wide(sb: Superblock): boolean {
  return sb.descBytes >= 64;
}

function descCsum(sb: Superblock, group: number, d: Uint8Array): number {
  let c = crc32cU32(sb.csumSeed, group);
  c = crc32c(c, d.subarray(0, CSUM_AT));
  c = crc32c(c, new Uint8Array(2));
  c = crc32c(c, d.subarray(CSUM_AT + 2, sb.descBytes));
  return c & 0xffff;
}

export function decodeGroupDesc(sb: Superblock, group: number, d: Uint8Array): GroupDesc {
  if (sb.metadataCsum && u16(d, CSUM_AT) !== descCsum(sb, group, d)) {
    throw new DconnectError('FS_CORRUPT', `group descriptor ${group}: checksum 0x${u16(d, CSUM_AT).toString(16)} does not match its contents`, 'check the image with e2fsck -fn');
  }
  const w = wide(sb);
  const hi16 = (o: number) => (w ? u16(d, o) : 0);
  const hi32f = (o: number) => (w ? u32(d, o) : 0);
  return {
    group,
    blockBitmap: hiLo(hi32f(0x20), u32(d, 0x0)),
    inodeBitmap: hiLo(hi32f(0x24), u32(d, 0x4)),
    inodeTable: hiLo(hi32f(0x28), u32(d, 0x8)),
    freeBlocks: (hi16(0x2c) << 16) + u16(d, 0xc),
    freeInodes: (hi16(0x2e) << 16) + u16(d, 0xe),
    usedDirs: (hi16(0x30) << 16) + u16(d, 0x10),
    flags: u16(d, 0x12),
    itableUnused: (hi16(0x32) << 16) + u16(d, 0x1c),
    blockBitmapCsum: (hi16(0x38) * 0x10000 + u16(d, 0x18)) >>> 0,
    inodeBitmapCsum: (hi16(0x3a) * 0x10000 + u16(d, 0x1a)) >>> 0,
  };
}

/** Writes the mutable fields (counts, flags, bitmap checksums) into `d` and reseals it. */
export function encodeGroupDesc(sb: Superblock, g: GroupDesc, d: Uint8Array): void {
  const w = wide(sb);
  set16(d, 0xc, g.freeBlocks & 0xffff);
  set16(d, 0xe, g.freeInodes & 0xffff);
  set16(d, 0x10, g.usedDirs & 0xffff);
  set16(d, 0x12, g.flags);
  set16(d, 0x1c, g.itableUnused & 0xffff);
  set16(d, 0x18, g.blockBitmapCsum & 0xffff);
  set16(d, 0x1a, g.inodeBitmapCsum & 0xffff);
  if (w) {
    set16(d, 0x2c, g.freeBlocks >>> 16);
    set16(d, 0x2e, g.freeInodes >>> 16);
    set16(d, 0x30, g.usedDirs >>> 16);
    set16(d, 0x32, g.itableUnused >>> 16);
    set16(d, 0x38, g.blockBitmapCsum >>> 16);
    set16(d, 0x3a, g.inodeBitmapCsum >>> 16);
  }
  if (sb.metadataCsum) set16(d, CSUM_AT, descCsum(sb, g.group, d));
}

/** A bitmap's checksum as the descriptor stores it (low 16 bits only with 32-byte descriptors). */
export function bitmapCsum(sb: Superblock, bitmap: Uint8Array, bits: number): number {
  const c = crc32c(sb.csumSeed, bitmap.subarray(0, bits / 8));
  return wide(sb) ? c : c & 0xffff;
}

/** Group descriptors start in the block after the superblock's (block 1 for 4 KiB blocks, 2 for 1 KiB). */
export function descTableBlock(sb: Superblock): number {
  return sb.firstDataBlock + 1;
}

/** Whether group g holds a superblock backup (sparse_super: 0, 1 and powers of 3, 5, 7). */
export function hasSuperBackup(sb: Superblock, g: number): boolean {
  if (g <= 1 || (sb.roCompat & 0x1) === 0) return true;
  for (const p of [3, 5, 7]) {
    let x = p;
    while (x < g) x *= p;
    if (x === g) return true;
  }
  return false;
}

export { hi32, lo32 };
