import { DconnectError } from '../../core/errors.js';
import type { Seq } from '../coroutine.js';
import { writeBytes, type BlockIo } from './block-io.js';
import { crc32c, crc32cU32 } from './crc32c.js';
import { makeDir } from './create.js';
import { dotBlock, sealLeaf } from './dirent.js';
import { Ext4 } from './ext4.js';
import { buildTree } from './extents.js';
import { bitmapCsum, descTableBlock, encodeGroupDesc, hasSuperBackup, type GroupDesc } from './group-desc.js';
import { encodeInode, FL, inodeCsumSeed, ROOT_INO, S_IFDIR, type Inode } from './inode.js';
import { set16, set32, hi32, lo32 } from './le.js';
import { parseSuperblock, SUPERBLOCK_BYTES, SUPERBLOCK_OFFSET } from './superblock.js';

/**
 * A small `mkfs.ext4` for the simulation's own images (`repro --only files` builds its source and
 * destination drives with it, so a run needs no e2fsprogs and is the same on every machine). It makes
 * the plain ext4 dconnect's code handles and e2fsck accepts: 4 KiB blocks, groups of 32768 blocks,
 * 256-byte inodes, 64bit, extent, filetype, sparse_super, large_file, huge_file, dir_nlink,
 * extra_isize, metadata_csum (crc32c everywhere) and dir_index; no journal, no flex_bg and no reserved
 * GDT blocks (each group holds its own bitmaps and inode table after its superblock backup, if any). It
 * writes only non-zero blocks: the drive reads zeros elsewhere, so the inode tables are already clean
 * (every group is marked INODE_ZEROED). Then `lost+found` is made through the file system code itself.
 * Checked by e2fsck -fn in test/host/fs/format.test.ts.
 */

export const FORMAT_BLOCK_BYTES = 4096;
const BLOCKS_PER_GROUP = 32768;
const INODE_BYTES = 256;
const FIRST_INO = 11;
const BG_INODE_ZEROED = 0x4;

export interface FormatOptions {
  /** Bytes of the file system: a whole number of 128 MiB groups, at most the device's size. */
  sizeBytes: number;
  /** Inodes per group (a multiple of 16, at most 32768); default 2048. */
  inodesPerGroup?: number;
  /** The superblock's and the root directory's times (model code reads no clock). */
  nowSec: number;
  /** Derives the UUID and the directory hash seed (an image is a function of its options). */
  seed: number;
  label?: string;
}

/** 16 bytes from a seed: crc32c chained over a counter (any fixed derivation serves; the UUID only salts checksums). */
function seededBytes16(seed: number, salt: number): Uint8Array {
  const out = new Uint8Array(16);
  let c = crc32cU32(salt >>> 0, seed >>> 0);
  for (let k = 0; k < 4; k++) {
    c = crc32cU32(c, k);
    set32(out, 4 * k, c);
  }
  out[6] = (out[6] & 0x0f) | 0x40; // a version-4 UUID's bits, as uuid_generate makes
  out[8] = (out[8] & 0x3f) | 0x80;
  return out;
}

interface Geometry {
  groups: number;
  blocks: number;
  ipg: number;
  gdtBlocks: number;
  itBlocks: number;
}

function geometryOf(io: BlockIo, o: FormatOptions): Geometry {
  const groupBytes = BLOCKS_PER_GROUP * FORMAT_BLOCK_BYTES;
  const ipg = o.inodesPerGroup ?? 2048;
  if (!Number.isInteger(o.sizeBytes) || o.sizeBytes <= 0 || o.sizeBytes % groupBytes !== 0) throw new DconnectError('BAD_OPTION', `a file system of ${o.sizeBytes} bytes is not a whole number of 128 MiB block groups`, 'use a size such as 1GiB or 2GiB');
  if (o.sizeBytes > io.sizeBytes) throw new DconnectError('BAD_IMAGE', `a file system of ${o.sizeBytes} bytes does not fit the ${io.sizeBytes}-byte device`, 'format a smaller file system or use a larger drive');
  if (!Number.isInteger(ipg) || ipg < 16 || ipg > BLOCKS_PER_GROUP || ipg % 16 !== 0) throw new DconnectError('BAD_OPTION', `${ipg} inodes per group: want a multiple of 16 in 16..${BLOCKS_PER_GROUP}`);
  const groups = o.sizeBytes / groupBytes;
  return { groups, blocks: groups * BLOCKS_PER_GROUP, ipg, gdtBlocks: Math.ceil((groups * 64) / FORMAT_BLOCK_BYTES), itBlocks: (ipg * INODE_BYTES) / FORMAT_BLOCK_BYTES };
}

function superblockBytes(g: Geometry, o: FormatOptions, freeBlocks: number, freeInodes: number): Uint8Array {
  const s = new Uint8Array(SUPERBLOCK_BYTES);
  set32(s, 0x0, g.groups * g.ipg);
  set32(s, 0x4, lo32(g.blocks));
  set32(s, 0xc, lo32(freeBlocks));
  set32(s, 0x10, freeInodes);
  set32(s, 0x14, 0); // first data block: 0 with 4 KiB blocks
  set32(s, 0x18, 2); // log2(block size) - 10
  set32(s, 0x1c, 2);
  set32(s, 0x20, BLOCKS_PER_GROUP);
  set32(s, 0x24, BLOCKS_PER_GROUP);
  set32(s, 0x28, g.ipg);
  set32(s, 0x30, o.nowSec);
  set16(s, 0x36, 0xffff); // max mount count -1: no forced check
  set16(s, 0x38, 0xef53);
  set16(s, 0x3a, 1); // cleanly unmounted
  set16(s, 0x3c, 1); // errors: continue
  set32(s, 0x40, o.nowSec);
  set32(s, 0x4c, 1); // dynamic revision
  set32(s, 0x54, FIRST_INO);
  set16(s, 0x58, INODE_BYTES);
  set32(s, 0x5c, 0x20); // compat: dir_index
  set32(s, 0x60, 0x2 | 0x40 | 0x80); // incompat: filetype, extent, 64bit
  set32(s, 0x64, 0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x400); // ro_compat: sparse_super, large_file, huge_file, dir_nlink, extra_isize, metadata_csum
  s.set(seededBytes16(o.seed, 0x55494400), 0x68);
  s.set(new TextEncoder().encode((o.label ?? '').slice(0, 16)), 0x78);
  const hashSeed = seededBytes16(o.seed, 0x48415348);
  s.set(hashSeed, 0xec);
  s[0xfc] = 1; // half_md4
  set16(s, 0xfe, 64); // descriptor size
  set32(s, 0x108, o.nowSec);
  set32(s, 0x150, hi32(g.blocks));
  set32(s, 0x158, hi32(freeBlocks));
  set16(s, 0x15c, 32);
  set16(s, 0x15e, 32);
  set32(s, 0x160, 0x1); // signed directory hash, as mkfs sets on x86
  s[0x175] = 1; // crc32c
  set32(s, 0x3fc, crc32c(0xffffffff, s.subarray(0, 0x3fc)));
  return s;
}

/** Where group g's own metadata sits: its superblock copy and descriptors (if any), then its bitmaps and inode table. */
function groupLayout(g: Geometry, sbForBackups: Parameters<typeof hasSuperBackup>[0], group: number): { start: number; blockBitmap: number; inodeBitmap: number; inodeTable: number; used: number } {
  const start = group * BLOCKS_PER_GROUP;
  const meta = hasSuperBackup(sbForBackups, group) ? 1 + g.gdtBlocks : 0;
  return { start, blockBitmap: start + meta, inodeBitmap: start + meta + 1, inodeTable: start + meta + 2, used: meta + 2 + g.itBlocks };
}

const setBits = (b: Uint8Array, from: number, to: number) => {
  for (let i = from; i < to; i++) b[i >> 3] |= 1 << (i & 7);
};

/** Formats `io` and makes `lost+found`; the file system is synced and clean when it returns. */
export function* formatExt4(io: BlockIo, o: FormatOptions): Seq<void> {
  const g = geometryOf(io, o);
  // A provisional superblock tells the shared helpers (backups, checksums) the geometry; counts are set below.
  const provisional = parseSuperblock(superblockBytes(g, o, 0, 0), io.sizeBytes);
  const layouts = Array.from({ length: g.groups }, (_, k) => groupLayout(g, provisional, k));
  // The root directory's block follows group 0's inode table.
  const rootDirBlock = layouts[0].start + layouts[0].used;
  const freeBlocks = layouts.reduce((n, l, k) => n + BLOCKS_PER_GROUP - l.used - (k === 0 ? 1 : 0), 0);
  const freeInodes = g.groups * g.ipg - (FIRST_INO - 1);
  const sbRaw = superblockBytes(g, o, freeBlocks, freeInodes);
  const sb = parseSuperblock(sbRaw, io.sizeBytes);

  const gdt = new Uint8Array(g.gdtBlocks * FORMAT_BLOCK_BYTES);
  const writes: { block: number; bytes: Uint8Array }[] = [];
  for (let k = 0; k < g.groups; k++) {
    const l = layouts[k];
    const bb = new Uint8Array(FORMAT_BLOCK_BYTES);
    setBits(bb, 0, l.used + (k === 0 ? 1 : 0));
    const ib = new Uint8Array(FORMAT_BLOCK_BYTES);
    if (k === 0) setBits(ib, 0, FIRST_INO - 1);
    setBits(ib, g.ipg, FORMAT_BLOCK_BYTES * 8); // padding past the group's inodes, as mkfs sets it
    const d = gdt.subarray(k * 64, k * 64 + 64);
    set32(d, 0x0, lo32(l.blockBitmap));
    set32(d, 0x4, lo32(l.inodeBitmap));
    set32(d, 0x8, lo32(l.inodeTable));
    set32(d, 0x20, hi32(l.blockBitmap));
    set32(d, 0x24, hi32(l.inodeBitmap));
    set32(d, 0x28, hi32(l.inodeTable));
    const desc: GroupDesc = {
      group: k,
      blockBitmap: l.blockBitmap,
      inodeBitmap: l.inodeBitmap,
      inodeTable: l.inodeTable,
      freeBlocks: BLOCKS_PER_GROUP - l.used - (k === 0 ? 1 : 0),
      freeInodes: g.ipg - (k === 0 ? FIRST_INO - 1 : 0),
      usedDirs: k === 0 ? 1 : 0,
      flags: BG_INODE_ZEROED,
      itableUnused: g.ipg - (k === 0 ? FIRST_INO - 1 : 0),
      blockBitmapCsum: bitmapCsum(sb, bb, BLOCKS_PER_GROUP),
      inodeBitmapCsum: bitmapCsum(sb, ib, g.ipg),
    };
    encodeGroupDesc(sb, desc, d);
    writes.push({ block: l.blockBitmap, bytes: bb }, { block: l.inodeBitmap, bytes: ib });
  }
  // The superblock and descriptors, and their backups (sparse_super: groups 0, 1 and powers of 3, 5, 7).
  for (let k = 0; k < g.groups; k++) {
    if (!hasSuperBackup(sb, k)) continue;
    const copy = sbRaw.slice();
    set16(copy, 0x5a, k);
    set32(copy, 0x3fc, crc32c(0xffffffff, copy.subarray(0, 0x3fc)));
    const at = k * BLOCKS_PER_GROUP;
    // Group 0's superblock sits at byte 1024 of block 0; a backup starts its group's first block.
    const b = new Uint8Array(FORMAT_BLOCK_BYTES);
    b.set(copy, k === 0 ? SUPERBLOCK_OFFSET : 0);
    writes.push({ block: at, bytes: b });
    writes.push({ block: at + descTableBlock(sb), bytes: gdt });
  }
  // The root directory: inode 2, one block with `.` and `..`.
  const root = rootInode(sb, o.nowSec, rootDirBlock);
  const dir = dotBlock(FORMAT_BLOCK_BYTES, true, ROOT_INO, ROOT_INO);
  sealLeaf(dir, inodeCsumSeed(sb, ROOT_INO, root.generation));
  writes.push({ block: rootDirBlock, bytes: dir });
  const itBlock = new Uint8Array(FORMAT_BLOCK_BYTES);
  itBlock.set(encodeInode(sb, root, 1), (ROOT_INO - 1) * INODE_BYTES);
  writes.push({ block: layouts[0].inodeTable, bytes: itBlock });
  for (const w of writes.sort((a, b) => a.block - b.block)) yield* writeBytes(io, w.block * FORMAT_BLOCK_BYTES, w.bytes);

  const fs = yield* Ext4.mount(io);
  yield* makeDir(fs, ROOT_INO, 'lost+found', '/lost+found', { mode: 0o700, uid: 0, gid: 0, atime: o.nowSec, atimeExtra: 0, mtime: o.nowSec, mtimeExtra: 0, ctime: o.nowSec });
  yield* fs.sync();
}

function rootInode(sb: ReturnType<typeof parseSuperblock>, nowSec: number, dirBlock: number): Inode {
  const raw = new Uint8Array(INODE_BYTES);
  raw.set(buildTree([{ logical: 0, physical: dirBlock, length: 1, unwritten: false }], FORMAT_BLOCK_BYTES, []).root, 0x28);
  return { ino: ROOT_INO, raw, mode: S_IFDIR | 0o755, uid: 0, gid: 0, sizeBytes: FORMAT_BLOCK_BYTES, atime: nowSec, ctime: nowSec, mtime: nowSec, crtime: nowSec, atimeExtra: 0, ctimeExtra: 0, mtimeExtra: 0, crtimeExtra: 0, links: 2, flags: FL.EXTENTS, generation: 0, extraIsize: 32 };
}
