import { DconnectError } from '../../core/errors.js';
import type { Seq } from '../coroutine.js';
import { allocBlocks, allocInode, freeBlocks, groupOfInode, type BlockRun } from './allocator.js';
import { dotBlock, emptyLeaf, FT, insertRecord, sealLeaf } from './dirent.js';
import { nameBytes, type Ext4, type FileMap } from './ext4.js';
import { buildTree, sealBlock, toExtents, treeBlocksFor, type Extent } from './extents.js';
import { crc32cU32 } from './crc32c.js';
import { splitLeafAndInsert } from './htree.js';
import { u16, u32 } from './le.js';
import { FL, isDir, isReg, S_IFDIR, S_IFMT, S_IFREG, type Inode } from './inode.js';

/**
 * Creating files and directories the way a copy needs them, in the crash-safe order the research
 * names (resolve, reserve, device copy, commit): `reserveFile` allocates the blocks and writes the
 * inode with every extent unwritten (reads as zeros; i_size 0, so e2fsck sees a preallocated empty
 * file), `commitFile` marks the extents written and sets the size once the data is on the device.
 */

/** What a copy keeps of its source, as `cp -p` does: mode, owner, access and modification times. */
export interface FileAttrs {
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  atimeExtra: number;
  mtime: number;
  mtimeExtra: number;
  /** Change and creation time of the new inode (the copy's own time, given by the caller: model code reads no clock). */
  ctime: number;
}

export function attrsOf(i: Inode, ctime: number): FileAttrs {
  return { mode: i.mode, uid: i.uid, gid: i.gid, atime: i.atime, atimeExtra: i.atimeExtra, mtime: i.mtime, mtimeExtra: i.mtimeExtra, ctime };
}

/** A destination file between reserve and commit. */
export interface Reservation {
  ino: number;
  /** File block -> fs block, every one unwritten until commit. */
  extents: Extent[];
  treeBlocks: number[];
  sizeBytes: number;
}

function blankInode(fs: Ext4, ino: number, a: FileAttrs, mode: number): Inode {
  const raw = new Uint8Array(fs.sb.inodeBytes);
  const extraIsize = fs.sb.inodeBytes > 128 ? Math.min(Math.max(fs.sb.wantExtraIsize, 32), fs.sb.inodeBytes - 128) : 0;
  return {
    ino,
    raw,
    mode,
    uid: a.uid,
    gid: a.gid,
    sizeBytes: 0,
    atime: a.atime,
    ctime: a.ctime,
    mtime: a.mtime,
    crtime: a.ctime,
    atimeExtra: a.atimeExtra,
    ctimeExtra: 0,
    mtimeExtra: a.mtimeExtra,
    crtimeExtra: 0,
    links: 1,
    flags: FL.EXTENTS,
    // Deterministic (the kernel draws it at random): any value serves, it only salts checksums and NFS handles.
    generation: crc32cU32(fs.sb.csumSeed, ino),
    extraIsize,
  };
}

/** Writes `extents` as the inode's tree (allocating its blocks near `goal`) and the inode itself. */
function* writeTree(fs: Ext4, i: Inode, extents: Extent[], treeBlocks: number[], dataBlocks: number): Seq<void> {
  const { root, nodes } = buildTree(extents, fs.blockBytes, treeBlocks);
  const seed = fs.csumSeedOf(i);
  for (const n of nodes) {
    if (fs.sb.metadataCsum) sealBlock(n.bytes, seed);
    fs.newBlock(n.block, n.bytes);
  }
  i.raw.set(root, 0x28);
  yield* fs.putInode(i, dataBlocks + treeBlocks.length);
}

function* allocTreeBlocks(fs: Ext4, extents: number, goal: number): Seq<number[]> {
  const runs = yield* allocBlocks(fs, treeBlocksFor(extents, fs.blockBytes), goal);
  return runs.flatMap((r) => Array.from({ length: r.length }, (_, k) => r.physical + k));
}

const singles = (blocks: number[]): BlockRun[] => blocks.map((b) => ({ physical: b, length: 1 }));

/**
 * Adds (`name`, `ino`) to a directory. Linear directories take it in the first block with room, or
 * grow by a block; an htree directory takes it in the leaf its hash leads to, splitting that leaf
 * when it is full (htree.ts).
 */
export function* addEntry(fs: Ext4, dirIno: number, name: string, ino: number, fileType: number): Seq<void> {
  const dir = yield* fs.inode(dirIno);
  const nb = nameBytes(name);
  const csum = fs.sb.metadataCsum;
  const seed = fs.csumSeedOf(dir);
  const map = yield* fs.fileMap(dir);
  const phys = (l: number) => map.extents.find((e) => l >= e.logical && l < e.logical + e.length);
  if (fs.isIndexed(dir)) {
    const probe = yield* fs.dxLeaf(dir, nb);
    const e = phys(probe.logical);
    if (!e) throw new DconnectError('FS_CORRUPT', `directory inode ${dir.ino}: htree leaf ${probe.logical} is a hole`);
    const p = e.physical + probe.logical - e.logical;
    const b = yield* fs.block(p);
    if (insertRecord(b, csum, nb, ino, fileType, `directory inode ${dir.ino} block ${probe.logical}`)) {
      if (csum) sealLeaf(b, seed);
      fs.markDirty(p);
      return;
    }
    return yield* splitLeafAndInsert(fs, dir, probe, nb, ino, fileType, (d, m, bytes) => appendDirBlock(fs, d, m, bytes));
  }
  const blocks = Math.ceil(dir.sizeBytes / fs.blockBytes);
  for (let l = 0; l < blocks; l++) {
    const e = phys(l);
    if (!e) continue;
    const p = e.physical + l - e.logical;
    const b = yield* fs.block(p);
    if (insertRecord(b, csum, nb, ino, fileType, `directory inode ${dir.ino} block ${l}`)) {
      if (csum) sealLeaf(b, seed);
      fs.markDirty(p);
      return;
    }
  }
  // No room: one more block.
  const nbk = emptyLeaf(fs.blockBytes, csum);
  insertRecord(nbk, csum, nb, ino, fileType, 'new directory block');
  if (csum) sealLeaf(nbk, seed);
  yield* appendDirBlock(fs, dir, map, nbk);
}

/** Appends `bytes` as a new last block of a directory (allocated after its last extent), its extent tree rebuilt and its size grown; returns the block's logical number. */
function* appendDirBlock(fs: Ext4, dir: Inode, map: FileMap, bytes: Uint8Array): Seq<number> {
  const blocks = Math.ceil(dir.sizeBytes / fs.blockBytes);
  const last = map.extents[map.extents.length - 1];
  const [run] = yield* allocBlocks(fs, 1, last ? last.physical + last.length : 0);
  fs.newBlock(run.physical, bytes);
  const extents = [...map.extents];
  if (last && last.physical + last.length === run.physical && last.logical + last.length === blocks && last.length < 32768 && !last.unwritten) extents[extents.length - 1] = { ...last, length: last.length + 1 };
  else extents.push({ logical: blocks, physical: run.physical, length: 1, unwritten: false });
  yield* freeBlocks(fs, singles(map.treeBlocks));
  const tree = yield* allocTreeBlocks(fs, extents.length, run.physical);
  dir.sizeBytes = (blocks + 1) * fs.blockBytes;
  yield* writeTree(fs, dir, extents, tree, extents.reduce((n, x) => n + x.length, 0));
  return blocks;
}

/** The entry's inode if the directory has `name`, checked to be a regular file when it is to be replaced. */
function* existing(fs: Ext4, dir: Inode, name: string, force: boolean, path: string): Seq<Inode | null> {
  const e = yield* fs.findEntry(dir, name);
  if (!e) return null;
  const i = yield* fs.inode(e.ino);
  if (!force) throw new DconnectError('FS_EXISTS', `'${path}' exists on the destination`, 'give --force to replace it, or another destination path');
  if (!isReg(i)) throw new DconnectError('FS_EXISTS', `'${path}' exists and is not a regular file; --force replaces files only`);
  if (i.links !== 1) throw new DconnectError('FS_EXISTS', `'${path}' has ${i.links} hard links; replacing it would change the others`, 'remove the other links first, or copy to another path');
  if (u32(i.raw, 0x68) !== 0 || u16(i.raw, 0x76) !== 0) throw new DconnectError('FS_EXISTS', `'${path}' has an extended attribute block, which --force would leak`, 'remove the file first, or copy to another path');
  return i;
}

/**
 * Reserves the destination of a copy: a new inode named `name` in `dir` (or, with `force`, the existing
 * regular file of that name, its old blocks freed), blocks for every mapped range of `ranges` (file
 * blocks; the gaps stay holes), all as unwritten extents, i_size 0. Nothing is written until `sync`.
 */
export function* reserveFile(fs: Ext4, dirIno: number, name: string, path: string, attrs: FileAttrs, sizeBytes: number, ranges: readonly { logical: number; length: number }[], force: boolean): Seq<Reservation> {
  const dir = yield* fs.inode(dirIno);
  if (!isDir(dir)) throw new DconnectError('FS_NOT_FOUND', `the destination's parent of '${path}' is not a directory`);
  const old = yield* existing(fs, dir, name, force, path);
  let i: Inode;
  if (old) {
    const m: FileMap = yield* fs.fileMap(old);
    yield* freeBlocks(fs, [...m.extents.map((e) => ({ physical: e.physical, length: e.length })), ...singles(m.treeBlocks)]);
    i = { ...blankInode(fs, old.ino, attrs, S_IFREG | (attrs.mode & ~S_IFMT)), generation: old.generation };
  } else {
    const ino = yield* allocInode(fs, groupOfInode(fs, dir.ino), false);
    i = blankInode(fs, ino, attrs, S_IFREG | (attrs.mode & ~S_IFMT));
  }
  const count = ranges.reduce((n, r) => n + r.length, 0);
  const goal = fs.groups[groupOfInode(fs, i.ino)].inodeTable;
  const runs = yield* allocBlocks(fs, count, goal);
  // Lay the file's ranges over the allocated runs in order: a range may span runs and a run ranges.
  const mapped: { logical: number; physical: number; length: number }[] = [];
  let r = 0;
  let used = 0;
  for (const range of ranges) {
    for (let done = 0; done < range.length; ) {
      const take = Math.min(range.length - done, runs[r].length - used);
      mapped.push({ logical: range.logical + done, physical: runs[r].physical + used, length: take });
      done += take;
      used += take;
      if (used === runs[r].length) {
        r++;
        used = 0;
      }
    }
  }
  const extents = toExtents(mapped, true);
  const tree = yield* allocTreeBlocks(fs, extents.length, runs.length > 0 ? runs[runs.length - 1].physical : goal);
  yield* writeTree(fs, i, extents, tree, count);
  if (!old) yield* addEntry(fs, dir.ino, name, i.ino, FT.REG);
  return { ino: i.ino, extents, treeBlocks: tree, sizeBytes };
}

/** Marks every extent written and sets the size: the file now reads as the data moved into its blocks. */
export function* commitFile(fs: Ext4, res: Reservation): Seq<void> {
  const i = yield* fs.inode(res.ino);
  const written = res.extents.map((e) => ({ ...e, unwritten: false }));
  i.sizeBytes = res.sizeBytes;
  yield* writeTree(fs, i, written, res.treeBlocks, written.reduce((n, e) => n + e.length, 0));
}

/** Makes directory `name` in `dir` (for copies of trees), with `.` and `..`; returns its inode. */
export function* makeDir(fs: Ext4, dirIno: number, name: string, path: string, attrs: FileAttrs): Seq<Inode> {
  const dir = yield* fs.inode(dirIno);
  const e = yield* fs.findEntry(dir, name);
  if (e) {
    const i = yield* fs.inode(e.ino);
    if (!isDir(i)) throw new DconnectError('FS_EXISTS', `'${path}' exists and is not a directory`);
    return i;
  }
  const ino = yield* allocInode(fs, groupOfInode(fs, dir.ino), true);
  const i = blankInode(fs, ino, attrs, S_IFDIR | (attrs.mode & ~S_IFMT));
  i.links = 2;
  const [run] = yield* allocBlocks(fs, 1, fs.groups[groupOfInode(fs, ino)].inodeTable);
  const b = dotBlock(fs.blockBytes, fs.sb.metadataCsum, ino, dir.ino);
  if (fs.sb.metadataCsum) sealLeaf(b, fs.csumSeedOf(i));
  fs.newBlock(run.physical, b);
  i.sizeBytes = fs.blockBytes;
  yield* writeTree(fs, i, [{ logical: 0, physical: run.physical, length: 1, unwritten: false }], [], 1);
  yield* addEntry(fs, dir.ino, name, ino, FT.DIR);
  // The parent's `..` link; dir_nlink parents past 64999 links stay at 1 ("many").
  const parent = yield* fs.inode(dir.ino);
  if (parent.links > 1 && parent.links < 64999) parent.links++;
  else if (parent.links >= 64999) parent.links = 1;
  yield* fs.putInode(parent, fs.ownedBlocks(parent));
  return yield* fs.inode(ino);
}
