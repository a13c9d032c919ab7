import { DconnectError } from '../../core/errors.js';
import { crc32c } from './crc32c.js';
import { hiLo, hi32, lo32, set32, u16, u32, u8 } from './le.js';

/** The superblock lives at byte 1024 of the device, 1024 bytes long (docs.kernel.org/filesystems/ext4/globals.html). */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_BYTES = 1024;
const MAGIC = 0xef53;
const S_CHECKSUM = 0x3fc;

/** Feature bits, named as e2fsprogs' `dumpe2fs` prints them. One table: what is handled and what is refused. */
const COMPAT: Record<number, string> = { 0x1: 'dir_prealloc', 0x2: 'imagic_inodes', 0x4: 'has_journal', 0x8: 'ext_attr', 0x10: 'resize_inode', 0x20: 'dir_index', 0x40: 'lazy_bg', 0x80: 'exclude_inode', 0x100: 'exclude_bitmap', 0x200: 'sparse_super2', 0x400: 'fast_commit', 0x800: 'stable_inodes', 0x1000: 'orphan_file' };
const INCOMPAT: Record<number, string> = { 0x1: 'compression', 0x2: 'filetype', 0x4: 'needs_recovery', 0x8: 'journal_dev', 0x10: 'meta_bg', 0x40: 'extent', 0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg', 0x400: 'ea_inode', 0x1000: 'dirdata', 0x2000: 'metadata_csum_seed', 0x4000: 'large_dir', 0x8000: 'inline_data', 0x10000: 'encrypt', 0x20000: 'casefold' };
const RO_COMPAT: Record<number, string> = { 0x1: 'sparse_super', 0x2: 'large_file', 0x4: 'btree_dir', 0x8: 'huge_file', 0x10: 'uninit_bg', 0x20: 'dir_nlink', 0x40: 'extra_isize', 0x80: 'snapshot', 0x100: 'quota', 0x200: 'bigalloc', 0x400: 'metadata_csum', 0x800: 'replica', 0x1000: 'read-only', 0x2000: 'project', 0x4000: 'shared_blocks', 0x8000: 'verity', 0x10000: 'orphan_present' };

/** What this code handles; every other bit set is refused by name. Compat bits are safe to ignore by definition, so only those with meaning are listed. */
const INCOMPAT_OK = 0x2 | 0x40 | 0x80 | 0x200 | 0x2000 | 0x4000;
const RO_COMPAT_OK = 0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x400;
const WHY: Record<string, string> = {
  needs_recovery: 'its journal holds transactions not yet replayed (a dirty journal); run e2fsck -fy on the image first',
  orphan_present: 'it has orphan inodes pending cleanup; run e2fsck -fy on the image first',
  uninit_bg: 'it uses the old crc16 group descriptor checksums (uninit_bg/gdt_csum); convert with tune2fs -O metadata_csum',
};

export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_CSUM_SEED = 0x2000;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_METADATA_CSUM = 0x400;
export const RO_COMPAT_DIR_NLINK = 0x20;
export const COMPAT_HAS_JOURNAL = 0x4;
export const COMPAT_DIR_INDEX = 0x20;
/** s_flags: directory hashes treat name bytes as unsigned chars (else signed, as x86 mkfs sets). */
const FLAG_UNSIGNED_HASH = 0x2;

export interface Superblock {
  raw: Uint8Array;
  inodesCount: number;
  blocksCount: number;
  freeBlocks: number;
  freeInodes: number;
  firstDataBlock: number;
  blockBytes: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  state: number;
  firstIno: number;
  inodeBytes: number;
  compat: number;
  incompat: number;
  roCompat: number;
  uuid: Uint8Array;
  journalInum: number;
  hashSeed: number[];
  defHashVersion: number;
  unsignedHash: boolean;
  descBytes: number;
  wantExtraIsize: number;
  metadataCsum: boolean;
  /** crc32c seed of every checksum: s_checksum_seed, or crc32c(~0, uuid). */
  csumSeed: number;
  groupCount: number;
  features: string[];
}

function names(bits: number, table: Record<number, string>): string[] {
  const out: string[] = [];
  for (let b = 0; b < 32; b++) {
    const m = 2 ** b;
    if (Math.floor(bits / m) % 2 === 1) out.push(table[m] ?? `unknown feature bit 0x${m.toString(16)}`);
  }
  return out;
}

/** Parses and checks the superblock: the magic, its checksum and every feature; refuses what is not handled. */
export function parseSuperblock(raw: Uint8Array, deviceBytes: number): Superblock {
  if (u16(raw, 0x38) !== MAGIC) throw new DconnectError('FS_UNSUPPORTED', 'no ext4 file system: the superblock magic at byte 1024 is not 0xEF53', 'load an ext4 image first (--image DEV=FILE, made by mkfs.ext4 -d TREE)');
  const compat = u32(raw, 0x5c);
  const incompat = u32(raw, 0x60);
  const roCompat = u32(raw, 0x64);
  const refused = [...names((incompat & ~INCOMPAT_OK) >>> 0, INCOMPAT), ...names((roCompat & ~RO_COMPAT_OK) >>> 0, RO_COMPAT)];
  if (refused.length > 0) {
    const f = refused[0];
    throw new DconnectError('FS_UNSUPPORTED', `the ext4 file system uses '${f}', which dconnect's ext4 code does not handle${WHY[f] ? `: ${WHY[f]}` : ''}`, WHY[f] ? undefined : `make the image with Debian's default mkfs.ext4 features (mkfs.ext4 -O ^${f})`);
  }
  if ((incompat & 0x40) === 0) throw new DconnectError('FS_UNSUPPORTED', "the file system lacks 'extent' (an ext2/ext3 image): dconnect handles extent-mapped ext4 only", 'make it with mkfs.ext4');
  const logBlock = u32(raw, 0x18);
  if (logBlock > 6 || u32(raw, 0x1c) !== logBlock) throw new DconnectError('FS_CORRUPT', `superblock: block size 2^${10 + logBlock} or a cluster size unlike it`, 'check the image with e2fsck -fn');
  const metadataCsum = (roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
  if (metadataCsum && u8(raw, 0x175) !== 1) throw new DconnectError('FS_UNSUPPORTED', `superblock checksum type ${u8(raw, 0x175)} is not crc32c`);
  if (metadataCsum) {
    const want = u32(raw, S_CHECKSUM);
    const got = crc32c(0xffffffff, raw.subarray(0, S_CHECKSUM));
    if (want !== got) throw new DconnectError('FS_CORRUPT', `superblock checksum 0x${want.toString(16)} does not match its contents (0x${got.toString(16)})`, 'check the image with e2fsck -fn');
  }
  const state = u16(raw, 0x3a);
  if ((state & 1) === 0 || (state & 2) !== 0) throw new DconnectError('FS_UNSUPPORTED', `the file system is ${(state & 2) !== 0 ? 'marked as having errors' : 'not cleanly unmounted'}`, 'run e2fsck -fy on the image first');
  const is64 = (incompat & INCOMPAT_64BIT) !== 0;
  const blockBytes = 1024 << logBlock;
  const blocksCount = hiLo(is64 ? u32(raw, 0x150) : 0, u32(raw, 0x4));
  const blocksPerGroup = u32(raw, 0x20);
  const inodesPerGroup = u32(raw, 0x28);
  const firstDataBlock = u32(raw, 0x14);
  const inodeBytes = u16(raw, 0x58);
  const descBytes = is64 ? u16(raw, 0xfe) : 32;
  if (blocksPerGroup === 0 || blocksPerGroup > blockBytes * 8 || inodesPerGroup === 0 || inodesPerGroup > blockBytes * 8 || inodeBytes < 128 || inodeBytes > blockBytes || (is64 && descBytes < 64)) {
    throw new DconnectError('FS_CORRUPT', 'superblock: group or inode geometry out of range', 'check the image with e2fsck -fn');
  }
  if (blocksCount * blockBytes > deviceBytes) throw new DconnectError('FS_CORRUPT', `the file system claims ${blocksCount * blockBytes} bytes, more than the device's ${deviceBytes}`, 'load the whole image (--image) onto a drive at least that large');
  const uuid = raw.slice(0x68, 0x78);
  const hashSeed = [0, 1, 2, 3].map((i) => u32(raw, 0xec + 4 * i));
  return {
    raw,
    inodesCount: u32(raw, 0x0),
    blocksCount,
    freeBlocks: hiLo(is64 ? u32(raw, 0x158) : 0, u32(raw, 0xc)),
    freeInodes: u32(raw, 0x10),
    firstDataBlock,
    blockBytes,
    blocksPerGroup,
    inodesPerGroup,
    state,
    firstIno: u32(raw, 0x54),
    inodeBytes,
    compat,
    incompat,
    roCompat,
    uuid,
    journalInum: u32(raw, 0xe0),
    hashSeed,
    defHashVersion: u8(raw, 0xfc),
    unsignedHash: (u32(raw, 0x160) & FLAG_UNSIGNED_HASH) !== 0,
    descBytes,
    wantExtraIsize: u16(raw, 0x15e),
    metadataCsum,
    csumSeed: (incompat & INCOMPAT_CSUM_SEED) !== 0 ? u32(raw, 0x270) : crc32c(0xffffffff, uuid),
    groupCount: Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup),
    features: [...names(compat, COMPAT), ...names(incompat, INCOMPAT), ...names(roCompat, RO_COMPAT)],
  };
}

/** Writes the free counts back into the raw superblock and reseals its checksum. */
export function sealSuperblock(sb: Superblock): Uint8Array {
  const raw = sb.raw;
  set32(raw, 0xc, lo32(sb.freeBlocks));
  if ((sb.incompat & INCOMPAT_64BIT) !== 0) set32(raw, 0x158, hi32(sb.freeBlocks));
  set32(raw, 0x10, sb.freeInodes);
  if (sb.metadataCsum) set32(raw, S_CHECKSUM, crc32c(0xffffffff, raw.subarray(0, S_CHECKSUM)));
  return raw;
}
