import { DconnectError } from '../../core/errors.js';
import { crc32c, crc32cU32 } from './crc32c.js';
import { hiLo, hi32, lo32, set16, set32, u16, u32 } from './le.js';
import { RO_COMPAT_HUGE_FILE, type Superblock } from './superblock.js';

/** i_flags (docs.kernel.org/filesystems/ext4/inodes.html). */
export const FL = { INDEX: 0x1000, HUGE_FILE: 0x40000, EXTENTS: 0x80000, ENCRYPT: 0x800, VERITY: 0x100000, INLINE_DATA: 0x10000000, CASEFOLD: 0x40000000 } as const;
export const S_IFMT = 0xf000;
export const S_IFREG = 0x8000;
export const S_IFDIR = 0x4000;
export const S_IFLNK = 0xa000;
export const ROOT_INO = 2;

const CSUM_LO = 0x7c;
const CSUM_HI = 0x82;
const BLOCK_AT = 0x28;

/** An inode, decoded. `raw` is its full on-disk size; `i_block` (60 bytes) is its extent root. */
export interface Inode {
  ino: number;
  raw: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  atime: number;
  ctime: number;
  mtime: number;
  crtime: number;
  /** Nanosecond/epoch extra fields, as stored (0 when the inode has no room for them). */
  atimeExtra: number;
  ctimeExtra: number;
  mtimeExtra: number;
  crtimeExtra: number;
  links: number;
  flags: number;
  generation: number;
  extraIsize: number;
}

export const isDir = (i: Inode): boolean => (i.mode & S_IFMT) === S_IFDIR;
export const isReg = (i: Inode): boolean => (i.mode & S_IFMT) === S_IFREG;
export const iBlock = (i: Inode): Uint8Array => i.raw.subarray(BLOCK_AT, BLOCK_AT + 60);

/** Whether a field at `off` (of `len` bytes) beyond the 128-byte base lies within i_extra_isize. */
const fits = (extraIsize: number, off: number, len: number) => off + len <= 128 + extraIsize;

/** The seed of every checksum of this inode's blocks (extent blocks, directory blocks): crc32c(seed, ino, generation). */
export function inodeCsumSeed(sb: Superblock, ino: number, generation: number): number {
  return crc32cU32(crc32cU32(sb.csumSeed, ino), generation);
}

function inodeCsum(sb: Superblock, ino: number, raw: Uint8Array): number {
  const copy = raw.slice();
  set16(copy, CSUM_LO, 0);
  const extra = raw.length > 128 ? u16(raw, 0x80) : 0;
  if (fits(extra, CSUM_HI, 2)) set16(copy, CSUM_HI, 0);
  return crc32c(inodeCsumSeed(sb, ino, u32(raw, 0x64)), copy);
}

export function decodeInode(sb: Superblock, ino: number, raw: Uint8Array): Inode {
  const extraIsize = raw.length > 128 ? u16(raw, 0x80) : 0;
  if (128 + extraIsize > raw.length) throw new DconnectError('FS_CORRUPT', `inode ${ino}: i_extra_isize ${extraIsize} runs past the ${raw.length}-byte inode`, 'check the image with e2fsck -fn');
  if (sb.metadataCsum) {
    const c = inodeCsum(sb, ino, raw);
    const hiOk = fits(extraIsize, CSUM_HI, 2);
    const stored = hiOk ? (u16(raw, CSUM_HI) * 0x10000 + u16(raw, CSUM_LO)) >>> 0 : u16(raw, CSUM_LO);
    if (stored !== (hiOk ? c : c & 0xffff)) throw new DconnectError('FS_CORRUPT', `inode ${ino}: checksum does not match its contents`, 'check the image with e2fsck -fn');
  }
  const ext = (off: number) => (fits(extraIsize, off, 4) ? u32(raw, off) : 0);
  return {
    ino,
    raw,
    mode: u16(raw, 0x0),
    uid: u16(raw, 0x2) | (u16(raw, 0x78) << 16),
    gid: u16(raw, 0x18) | (u16(raw, 0x7a) << 16),
    sizeBytes: hiLo(u32(raw, 0x6c), u32(raw, 0x4)),
    atime: u32(raw, 0x8),
    ctime: u32(raw, 0xc),
    mtime: u32(raw, 0x10),
    crtime: ext(0x90),
    atimeExtra: ext(0x8c),
    ctimeExtra: ext(0x84),
    mtimeExtra: ext(0x88),
    crtimeExtra: ext(0x94),
    links: u16(raw, 0x1a),
    flags: u32(raw, 0x20),
    generation: u32(raw, 0x64),
    extraIsize,
  };
}

/**
 * Writes the decoded fields back into `raw` and reseals its checksum. `blocks` is the count of fs
 * blocks it owns (data and extent tree), stored in 512-byte units (or fs blocks with HUGE_FILE_FL).
 */
export function encodeInode(sb: Superblock, i: Inode, blocks: number): Uint8Array {
  const raw = i.raw;
  set16(raw, 0x0, i.mode);
  set16(raw, 0x2, i.uid & 0xffff);
  set16(raw, 0x78, i.uid >>> 16);
  set16(raw, 0x18, i.gid & 0xffff);
  set16(raw, 0x7a, i.gid >>> 16);
  set32(raw, 0x4, lo32(i.sizeBytes));
  set32(raw, 0x6c, hi32(i.sizeBytes));
  set32(raw, 0x8, i.atime);
  set32(raw, 0xc, i.ctime);
  set32(raw, 0x10, i.mtime);
  set16(raw, 0x1a, i.links);
  set32(raw, 0x64, i.generation);
  let units = blocks * (sb.blockBytes / 512);
  let flags = i.flags & ~FL.HUGE_FILE;
  if (units >= 2 ** 48) {
    if ((sb.roCompat & RO_COMPAT_HUGE_FILE) === 0) throw new DconnectError('FS_NO_SPACE', `inode ${i.ino}: ${blocks} blocks need the huge_file feature`);
    flags |= FL.HUGE_FILE;
    units = blocks;
  }
  i.flags = flags;
  set32(raw, 0x20, flags);
  set32(raw, 0x1c, lo32(units));
  set16(raw, 0x74, hi32(units) & 0xffff);
  if (raw.length > 128) set16(raw, 0x80, i.extraIsize);
  const put = (off: number, v: number) => {
    if (fits(i.extraIsize, off, 4)) set32(raw, off, v);
  };
  put(0x84, i.ctimeExtra);
  put(0x88, i.mtimeExtra);
  put(0x8c, i.atimeExtra);
  put(0x90, i.crtime);
  put(0x94, i.crtimeExtra);
  if (sb.metadataCsum) {
    const c = inodeCsum(sb, i.ino, raw);
    set16(raw, CSUM_LO, c & 0xffff);
    if (fits(i.extraIsize, CSUM_HI, 2)) set16(raw, CSUM_HI, c >>> 16);
  }
  return raw;
}

/** The blocks an inode owns as stored (i_blocks in 512-byte units, or fs blocks with HUGE_FILE_FL), in fs blocks. */
export function inodeBlocks(sb: Superblock, i: Inode): number {
  const units = hiLo(u16(i.raw, 0x74), u32(i.raw, 0x1c));
  return (i.flags & FL.HUGE_FILE) !== 0 ? units : units / (sb.blockBytes / 512);
}
