import { DconnectError } from '../../core/errors.js';
import type { Seq } from '../coroutine.js';
import type { Ext4 } from './ext4.js';
import { BG_BLOCK_UNINIT, BG_INODE_UNINIT, bitmapCsum, descTableBlock, hasSuperBackup } from './group-desc.js';
import { u16 } from './le.js';

/**
 * Block and inode allocation over the groups' bitmaps, with the group descriptors' and the
 * superblock's free counts kept in step (checksums are resealed by `Ext4.sync`). A group whose bitmap
 * was never initialised (BLOCK_UNINIT, mkfs's lazy init) gets the bitmap the kernel would compute
 * (`ext4_init_block_bitmap`), and is used only if its free count agrees with the descriptor's.
 */

const bit = (b: Uint8Array, i: number) => (b[i >> 3] >> (i & 7)) & 1;
const setBit = (b: Uint8Array, i: number) => (b[i >> 3] |= 1 << (i & 7));
const clearBit = (b: Uint8Array, i: number) => (b[i >> 3] &= ~(1 << (i & 7)));

function groupStart(fs: Ext4, g: number): number {
  return fs.sb.firstDataBlock + g * fs.sb.blocksPerGroup;
}

function groupBlocks(fs: Ext4, g: number): number {
  return Math.min(fs.sb.blocksPerGroup, fs.sb.blocksCount - groupStart(fs, g));
}

/** The bitmap the kernel computes for a BLOCK_UNINIT group: its superblock/descriptor copy, its own bitmaps and table, the tail past the end. */
function initBlockBitmap(fs: Ext4, g: number): Uint8Array {
  const sb = fs.sb;
  const b = new Uint8Array(fs.blockBytes);
  const start = groupStart(fs, g);
  if (hasSuperBackup(sb, g)) {
    const gdt = Math.ceil((sb.groupCount * sb.descBytes) / sb.blockBytes);
    const meta = descTableBlock(sb) - sb.firstDataBlock + gdt + u16(sb.raw, 0xce);
    for (let i = 0; i < meta; i++) setBit(b, i);
  }
  const d = fs.groups[g];
  const own = [d.blockBitmap, d.inodeBitmap, ...Array.from({ length: Math.ceil((sb.inodesPerGroup * sb.inodeBytes) / sb.blockBytes) }, (_, k) => d.inodeTable + k)];
  for (const x of own) if (x >= start && x < start + sb.blocksPerGroup) setBit(b, x - start);
  for (let i = groupBlocks(fs, g); i < fs.blockBytes * 8; i++) setBit(b, i);
  return b;
}

/** A group's block bitmap, loaded once (checked against its checksum) and kept for the allocator; null for a group not to be used. */
function* blockBitmap(fs: Ext4, g: number): Seq<Uint8Array | null> {
  const have = fs.blockBitmaps.get(g);
  if (have) return have;
  const d = fs.groups[g];
  let b: Uint8Array;
  if ((d.flags & BG_BLOCK_UNINIT) !== 0) {
    b = initBlockBitmap(fs, g);
    let free = 0;
    for (let i = 0; i < groupBlocks(fs, g); i++) if (!bit(b, i)) free++;
    if (free !== d.freeBlocks) return null;
  } else {
    b = (yield* fs.block(d.blockBitmap)).slice();
    if (fs.sb.metadataCsum && bitmapCsum(fs.sb, b, fs.sb.blocksPerGroup) !== d.blockBitmapCsum) throw new DconnectError('FS_CORRUPT', `group ${g}: block bitmap checksum does not match`, 'check the image with e2fsck -fn');
  }
  fs.blockBitmaps.set(g, b);
  return b;
}

function* inodeBitmap(fs: Ext4, g: number): Seq<Uint8Array> {
  const have = fs.inodeBitmaps.get(g);
  if (have) return have;
  const d = fs.groups[g];
  let b: Uint8Array;
  if ((d.flags & BG_INODE_UNINIT) !== 0) {
    b = new Uint8Array(fs.blockBytes);
    for (let i = fs.sb.inodesPerGroup; i < fs.blockBytes * 8; i++) setBit(b, i);
  } else {
    b = (yield* fs.block(d.inodeBitmap)).slice();
    if (fs.sb.metadataCsum && bitmapCsum(fs.sb, b, fs.sb.inodesPerGroup) !== d.inodeBitmapCsum) throw new DconnectError('FS_CORRUPT', `group ${g}: inode bitmap checksum does not match`, 'check the image with e2fsck -fn');
  }
  fs.inodeBitmaps.set(g, b);
  return b;
}

export interface BlockRun {
  physical: number;
  length: number;
}

/**
 * Allocates `count` blocks, first fit from `goal` on (wrapping once over every group), as few runs
 * as the free space allows. Refused whole, before any bit changes, if the file system has too few.
 */
export function* allocBlocks(fs: Ext4, count: number, goal: number): Seq<BlockRun[]> {
  const sb = fs.sb;
  if (count === 0) return [];
  if (count > sb.freeBlocks) throw new DconnectError('FS_NO_SPACE', `the destination file system has ${sb.freeBlocks} free blocks; ${count} are needed`, 'free space on the destination or use a larger image');
  const runs: BlockRun[] = [];
  let left = count;
  const g0 = Math.min(Math.max(0, Math.floor((goal - sb.firstDataBlock) / sb.blocksPerGroup)), sb.groupCount - 1);
  for (let k = 0; k < sb.groupCount && left > 0; k++) {
    const g = (g0 + k) % sb.groupCount;
    if (fs.groups[g].freeBlocks === 0) continue;
    const b = yield* blockBitmap(fs, g);
    if (!b) continue;
    const n = groupBlocks(fs, g);
    const from = k === 0 ? Math.max(0, Math.min(n - 1, goal - groupStart(fs, g))) : 0;
    let took = 0;
    for (let pass = 0; pass < 2 && left > 0; pass++) {
      const [lo, hi] = pass === 0 ? [from, n] : [0, from];
      for (let i = lo; i < hi && left > 0; i++) {
        if (bit(b, i)) continue;
        setBit(b, i);
        took++;
        left--;
        const p = groupStart(fs, g) + i;
        const last = runs[runs.length - 1];
        if (last && last.physical + last.length === p) last.length++;
        else runs.push({ physical: p, length: 1 });
      }
    }
    if (took > 0) {
      const d = fs.groups[g];
      d.freeBlocks -= took;
      d.flags &= ~BG_BLOCK_UNINIT;
      fs.dirtyGroups.add(g);
    }
  }
  if (left > 0) throw new DconnectError('FS_NO_SPACE', `only ${count - left} of ${count} blocks could be allocated (groups with an uninitialised bitmap that does not add up are skipped)`, 'run e2fsck -fy on the destination image, or use a larger one');
  sb.freeBlocks -= count;
  fs.sbDirty = true;
  return runs;
}

/** Gives blocks back (a replaced file's, an extent tree's that was rebuilt). */
export function* freeBlocks(fs: Ext4, runs: readonly BlockRun[]): Seq<void> {
  for (const r of runs) {
    for (let p = r.physical; p < r.physical + r.length; p++) {
      const g = Math.floor((p - fs.sb.firstDataBlock) / fs.sb.blocksPerGroup);
      const b = yield* blockBitmap(fs, g);
      const i = p - groupStart(fs, g);
      if (!b || !bit(b, i)) throw new DconnectError('FS_CORRUPT', `block ${p} is freed but not marked in use`, 'check the image with e2fsck -fn');
      clearBit(b, i);
      fs.groups[g].freeBlocks++;
      fs.dirtyGroups.add(g);
      fs.sb.freeBlocks++;
    }
  }
  fs.sbDirty = true;
}

/** Allocates an inode, preferring `preferGroup`; keeps itable_unused, the used-directory count and the free counts right. */
export function* allocInode(fs: Ext4, preferGroup: number, directory: boolean): Seq<number> {
  const sb = fs.sb;
  if (sb.freeInodes === 0) throw new DconnectError('FS_NO_SPACE', 'the destination file system has no free inodes', 'use an image with more inodes (mkfs.ext4 -N)');
  for (let k = 0; k < sb.groupCount; k++) {
    const g = (preferGroup + k) % sb.groupCount;
    const d = fs.groups[g];
    if (d.freeInodes === 0) continue;
    const b = yield* inodeBitmap(fs, g);
    for (let i = 0; i < sb.inodesPerGroup; i++) {
      const ino = g * sb.inodesPerGroup + i + 1;
      if (bit(b, i) || ino < sb.firstIno) continue;
      setBit(b, i);
      d.freeInodes--;
      d.flags &= ~BG_INODE_UNINIT;
      if (directory) d.usedDirs++;
      if (i >= sb.inodesPerGroup - d.itableUnused) d.itableUnused = sb.inodesPerGroup - i - 1;
      fs.dirtyGroups.add(g);
      sb.freeInodes--;
      fs.sbDirty = true;
      return ino;
    }
  }
  throw new DconnectError('FS_NO_SPACE', 'no free inode found in any group', 'run e2fsck -fn on the destination image');
}

export const groupOfInode = (fs: Ext4, ino: number): number => Math.floor((ino - 1) / fs.sb.inodesPerGroup);
