import { DconnectError } from '../../core/errors.js';
import type { Seq } from '../coroutine.js';
import { flushIo, readBytes, writeBytes, type BlockIo } from './block-io.js';
import { dirHash } from './dirhash.js';
import { checkDxCsum, checkLeafCsum, dxChild, dxNode, records, type Dirent, type DxNode } from './dirent.js';
import { blockCsumOk, indexEntry, leafEntry, MAX_DEPTH, nodeHeader, type Extent } from './extents.js';
import { bitmapCsum, decodeGroupDesc, descTableBlock, encodeGroupDesc, type GroupDesc } from './group-desc.js';
import { decodeInode, encodeInode, FL, iBlock, inodeBlocks, inodeCsumSeed, isDir, ROOT_INO, S_IFLNK, S_IFMT, type Inode } from './inode.js';
import { be32, u8 } from './le.js';
import { COMPAT_DIR_INDEX, COMPAT_HAS_JOURNAL, parseSuperblock, sealSuperblock, SUPERBLOCK_BYTES, SUPERBLOCK_OFFSET, type Superblock } from './superblock.js';

/** Path components followed at most (a bound on every walk). */
export const MAX_PATH_COMPONENTS = 64;
/** Directory blocks read at most per directory (a 4 KiB-block directory of 4 GiB). */
export const MAX_DIR_BLOCKS = 1 << 20;
const JBD2_MAGIC = 0xc03b3998;

export interface DirEntry {
  name: string;
  ino: number;
  fileType: number;
}

/** A file's map: its extents (sorted by logical block) and the tree blocks outside the inode. */
/** One index node on the way to an htree leaf: its block, the node as read, and the entry followed. */
export interface DxStep {
  physical: number;
  node: DxNode;
  entry: number;
}

export interface FileMap {
  extents: Extent[];
  treeBlocks: number[];
}

const utf8 = new TextEncoder();
const text = new TextDecoder();
export const nameBytes = (s: string): Uint8Array => utf8.encode(s);

/**
 * An ext4 file system on a block device, as the host's software sees it: every metadata block read or
 * written goes through `BlockIo` (over the fabric in simulation), through a block cache that keeps
 * changed blocks until `sync` writes them in block order and flushes. Reading is here; allocation and
 * file creation are in `allocator.ts` and `create.ts`, on top of the same cache.
 */
export class Ext4 {
  private readonly cache = new Map<number, Uint8Array>();
  private readonly dirty = new Set<number>();
  readonly groups: GroupDesc[] = [];
  readonly dirtyGroups = new Set<number>();
  sbDirty = false;
  /** Bitmaps in use by the allocator (group -> bytes); written back with their checksums in `sync`. */
  readonly blockBitmaps = new Map<number, Uint8Array>();
  readonly inodeBitmaps = new Map<number, Uint8Array>();

  private constructor(
    readonly io: BlockIo,
    readonly sb: Superblock,
  ) {}

  /** Reads and checks the superblock, the group descriptors and the journal (which must be empty). */
  static *mount(io: BlockIo): Seq<Ext4> {
    if (io.sizeBytes < SUPERBLOCK_OFFSET + SUPERBLOCK_BYTES) throw new DconnectError('FS_UNSUPPORTED', 'the device is too small to hold an ext4 file system');
    const sb = parseSuperblock(yield* readBytes(io, SUPERBLOCK_OFFSET, SUPERBLOCK_BYTES), io.sizeBytes);
    const fs = new Ext4(io, sb);
    const perBlock = sb.blockBytes / sb.descBytes;
    for (let g = 0; g < sb.groupCount; g++) {
      const b = yield* fs.block(descTableBlock(sb) + Math.floor(g / perBlock));
      const at = (g % perBlock) * sb.descBytes;
      fs.groups.push(decodeGroupDesc(sb, g, b.subarray(at, at + sb.descBytes)));
    }
    if (sb.raw[0xe8] | sb.raw[0xe9] | sb.raw[0xea] | sb.raw[0xeb]) throw new DconnectError('FS_UNSUPPORTED', 'the file system has an orphan inode list pending cleanup', 'run e2fsck -fy on the image first');
    if ((sb.compat & COMPAT_HAS_JOURNAL) !== 0) yield* fs.checkJournal();
    return fs;
  }

  /** The journal must be empty (jbd2 superblock s_start 0): dconnect writes metadata in place and never replays. */
  private *checkJournal(): Seq<void> {
    if (this.sb.journalInum === 0) throw new DconnectError('FS_UNSUPPORTED', "the file system's journal is on an external device (journal_dev)", 'use an image with an internal journal');
    const map = yield* this.fileMap(yield* this.inode(this.sb.journalInum));
    const first = map.extents.find((e) => e.logical === 0);
    if (!first) throw new DconnectError('FS_CORRUPT', 'the journal inode maps no first block', 'check the image with e2fsck -fn');
    const jsb = yield* this.block(first.physical);
    if (be32(jsb, 0) !== JBD2_MAGIC) throw new DconnectError('FS_CORRUPT', 'the journal superblock has no jbd2 magic', 'check the image with e2fsck -fn');
    if (be32(jsb, 0x1c) !== 0) throw new DconnectError('FS_UNSUPPORTED', 'the journal is not empty (a dirty journal: transactions not yet replayed)', 'run e2fsck -fy on the image first');
  }

  get blockBytes(): number {
    return this.sb.blockBytes;
  }

  /** One fs block, from the cache or the device; the array is the cache's (change it, then `markDirty`). */
  *block(n: number): Seq<Uint8Array> {
    const hit = this.cache.get(n);
    if (hit) return hit;
    if (!Number.isInteger(n) || n < 0 || n >= this.sb.blocksCount) throw new DconnectError('FS_CORRUPT', `metadata points at block ${n}, outside the file system's ${this.sb.blocksCount} blocks`, 'check the image with e2fsck -fn');
    const b = yield* readBytes(this.io, n * this.sb.blockBytes, this.sb.blockBytes);
    this.cache.set(n, b);
    return b;
  }

  /** Puts a whole new block into the cache (a block just allocated: nothing to read). */
  newBlock(n: number, bytes: Uint8Array): void {
    this.cache.set(n, bytes);
    this.dirty.add(n);
  }

  markDirty(n: number): void {
    this.dirty.add(n);
  }

  private inodeLocation(ino: number): { block: number; at: number } {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.sb.inodesCount) throw new DconnectError('FS_CORRUPT', `inode number ${ino} is outside 1..${this.sb.inodesCount}`, 'check the image with e2fsck -fn');
    const g = Math.floor((ino - 1) / this.sb.inodesPerGroup);
    const byte = ((ino - 1) % this.sb.inodesPerGroup) * this.sb.inodeBytes;
    return { block: this.groups[g].inodeTable + Math.floor(byte / this.sb.blockBytes), at: byte % this.sb.blockBytes };
  }

  *inode(ino: number): Seq<Inode> {
    const { block, at } = this.inodeLocation(ino);
    const b = yield* this.block(block);
    return decodeInode(this.sb, ino, b.slice(at, at + this.sb.inodeBytes));
  }

  /** Writes an inode (its fields, `blocks` fs blocks owned) into its table block and marks it for sync. */
  *putInode(i: Inode, blocks: number): Seq<void> {
    const { block, at } = this.inodeLocation(i.ino);
    const b = yield* this.block(block);
    b.set(encodeInode(this.sb, i, blocks), at);
    this.dirty.add(block);
  }

  csumSeedOf(i: Inode): number {
    return inodeCsumSeed(this.sb, i.ino, i.generation);
  }

  /** The inode's extents and tree blocks, walking a tree of any depth up to MAX_DEPTH, checking every node. */
  *fileMap(i: Inode): Seq<FileMap> {
    const refused: [number, string][] = [[FL.INLINE_DATA, 'inline_data'], [FL.ENCRYPT, 'encrypt'], [FL.VERITY, 'verity'], [FL.CASEFOLD, 'casefold']];
    for (const [bit, name] of refused) if ((i.flags & bit) !== 0) throw new DconnectError('FS_UNSUPPORTED', `inode ${i.ino} uses '${name}', which dconnect's ext4 code does not handle`);
    if ((i.flags & FL.EXTENTS) === 0) {
      if ((i.mode & S_IFMT) === S_IFLNK) return { extents: [], treeBlocks: [] };
      throw new DconnectError('FS_UNSUPPORTED', `inode ${i.ino} maps its blocks indirectly (an ext2/ext3 file); dconnect handles extent-mapped files only`);
    }
    const out: FileMap = { extents: [], treeBlocks: [] };
    const seed = this.csumSeedOf(i);
    const walk = function* (this: Ext4, node: Uint8Array, expectDepth: number | null, where: string): Seq<void> {
      const h = nodeHeader(node, where);
      if (expectDepth !== null && h.depth !== expectDepth) throw new DconnectError('FS_CORRUPT', `${where}: depth ${h.depth} where ${expectDepth} was expected`, 'check the image with e2fsck -fn');
      for (let k = 0; k < h.entries; k++) {
        if (h.depth === 0) {
          out.extents.push(leafEntry(node, k));
          continue;
        }
        const { child } = indexEntry(node, k);
        out.treeBlocks.push(child);
        const b = yield* this.block(child);
        const where2 = `inode ${i.ino}: extent block ${child}`;
        const ch = nodeHeader(b, where2);
        if (this.sb.metadataCsum && !blockCsumOk(b, ch.max, seed)) throw new DconnectError('FS_CORRUPT', `${where2}: checksum does not match its contents`, 'check the image with e2fsck -fn');
        yield* walk.call(this, b, h.depth - 1, where2);
      }
    };
    const root = iBlock(i);
    if (nodeHeader(root, `inode ${i.ino}`).depth > MAX_DEPTH) throw new DconnectError('FS_CORRUPT', `inode ${i.ino}: extent tree deeper than ${MAX_DEPTH}`);
    yield* walk.call(this, root, null, `inode ${i.ino}`);
    let end = 0;
    for (const e of out.extents) {
      if (e.logical < end || e.length === 0 || e.physical + e.length > this.sb.blocksCount) throw new DconnectError('FS_CORRUPT', `inode ${i.ino}: extent (${e.logical}, ${e.physical}, ${e.length}) overlaps another or lies outside the file system`, 'check the image with e2fsck -fn');
      end = e.logical + e.length;
    }
    return out;
  }

  /** The fs block holding file block `logical`, or null (a hole). */
  private static physicalOf(map: FileMap, logical: number): number | null {
    for (const e of map.extents) if (logical >= e.logical && logical < e.logical + e.length) return e.physical + (logical - e.logical);
    return null;
  }

  /** Every record of a directory, in block order (htree directories read linearly: their index blocks are empty records). */
  *readDir(dir: Inode): Seq<DirEntry[]> {
    if (!isDir(dir)) throw new DconnectError('FS_NOT_FOUND', `inode ${dir.ino} is not a directory`);
    const map = yield* this.fileMap(dir);
    const blocks = Math.min(Math.ceil(dir.sizeBytes / this.blockBytes), MAX_DIR_BLOCKS);
    const out: DirEntry[] = [];
    const seed = this.csumSeedOf(dir);
    const indexed = this.isIndexed(dir);
    for (let l = 0; l < blocks; l++) {
      const p = Ext4.physicalOf(map, l);
      if (p === null) continue;
      const b = yield* this.block(p);
      const where = `directory inode ${dir.ino} block ${l}`;
      const recs = records(b, this.sb.metadataCsum && !(indexed && this.isDxBlock(b, l)), where);
      if (this.sb.metadataCsum && !(indexed && this.isDxBlock(b, l))) checkLeafCsum(b, seed, where);
      for (const r of recs) if (r.ino !== 0) out.push({ name: text.decode(r.name), ino: r.ino, fileType: r.fileType });
    }
    return out;
  }

  isIndexed(dir: Inode): boolean {
    return (dir.flags & FL.INDEX) !== 0 && (this.sb.compat & COMPAT_DIR_INDEX) !== 0;
  }

  /** An htree index block (root or interior): a record covering the whole block with no name, or the root. */
  private isDxBlock(b: Uint8Array, logical: number): boolean {
    if (logical === 0) return true;
    const recLen = b[4] | (b[5] << 8);
    return (b[0] | b[1] | b[2] | b[3]) === 0 && (recLen === this.blockBytes || (this.blockBytes === 65536 && (recLen === 0 || recLen === 65535))) && b[6] === 0;
  }

  /**
   * The htree leaf block (logical) where `name` lives or would be inserted (kernel `dx_probe`): hash the
   * name, then at each level the last index entry whose hash is at most it. Every node's checksum is
   * checked. `path` holds each index node passed (its physical block, the node, the entry taken), root first.
   */
  *dxLeaf(dir: Inode, name: Uint8Array): Seq<{ logical: number; map: FileMap; hash: number; hashVersion: number; path: DxStep[] }> {
    const map = yield* this.fileMap(dir);
    const seed = this.csumSeedOf(dir);
    const rootP = Ext4.physicalOf(map, 0);
    if (rootP === null) throw new DconnectError('FS_CORRUPT', `directory inode ${dir.ino}: no htree root block`);
    const root = yield* this.block(rootP);
    const where = `directory inode ${dir.ino} htree root`;
    if (u8(root, 0x1d) !== 8) throw new DconnectError('FS_CORRUPT', `${where}: info length ${u8(root, 0x1d)}`, 'check the image with e2fsck -fn');
    const levels = u8(root, 0x1e);
    if (levels > 2) throw new DconnectError('FS_CORRUPT', `${where}: ${levels} indirect levels`, 'check the image with e2fsck -fn');
    const hashVersion = u8(root, 0x1c);
    const hash = dirHash(name, hashVersion, this.sb.hashSeed, this.sb.unsignedHash);
    let node = dxNode(root, 0x20, where);
    let b = root;
    let p = rootP;
    const path: DxStep[] = [];
    for (let level = 0; ; level++) {
      if (this.sb.metadataCsum) checkDxCsum(b, node, seed, where);
      const at = dxChild(node, hash);
      path.push({ physical: p, node, entry: at });
      const child = node.entries[at].block;
      if (level === levels) return { logical: child, map, hash, hashVersion, path };
      const cp = Ext4.physicalOf(map, child);
      if (cp === null) throw new DconnectError('FS_CORRUPT', `${where}: index points at a hole (block ${child})`);
      p = cp;
      b = yield* this.block(p);
      node = dxNode(b, 8, `directory inode ${dir.ino} htree node ${child}`);
    }
  }

  /** The entry `name` of a directory, or null: by the htree where the directory has one, else by a linear scan. */
  *findEntry(dir: Inode, name: string): Seq<DirEntry | null> {
    const nb = nameBytes(name);
    if (this.isIndexed(dir)) {
      const { logical, map } = yield* this.dxLeaf(dir, nb);
      const p = Ext4.physicalOf(map, logical);
      if (p !== null) {
        const b = yield* this.block(p);
        const where = `directory inode ${dir.ino} block ${logical}`;
        if (this.sb.metadataCsum) checkLeafCsum(b, this.csumSeedOf(dir), where);
        const hit = records(b, this.sb.metadataCsum, where).find((r: Dirent) => r.ino !== 0 && sameName(r.name, nb));
        if (hit) return { name, ino: hit.ino, fileType: hit.fileType };
      }
      // A hash collision may continue into the next leaf: fall back to the whole directory.
    }
    const all = yield* this.readDir(dir);
    return all.find((e) => e.name === name) ?? null;
  }

  /** The inode at an absolute path (no symlinks followed). */
  *lookup(path: string): Seq<Inode> {
    const parts = splitPath(path);
    let cur = yield* this.inode(ROOT_INO);
    for (let k = 0; k < parts.length; k++) {
      if (!isDir(cur)) throw new DconnectError('FS_NOT_FOUND', `'/${parts.slice(0, k).join('/')}' is not a directory`, 'check the path with dconnect ls');
      const e = yield* this.findEntry(cur, parts[k]);
      if (!e) throw new DconnectError('FS_NOT_FOUND', `no '/${parts.slice(0, k + 1).join('/')}' on the file system`, `list the directory with dconnect ls DEV:/${parts.slice(0, k).join('/')}`);
      cur = yield* this.inode(e.ino);
      if ((cur.mode & S_IFMT) === S_IFLNK && k < parts.length - 1) throw new DconnectError('FS_UNSUPPORTED', `'/${parts.slice(0, k + 1).join('/')}' is a symbolic link; dconnect does not follow links`);
    }
    return cur;
  }

  /** Fs blocks the inode owns as its i_blocks says. */
  ownedBlocks(i: Inode): number {
    return inodeBlocks(this.sb, i);
  }

  /** Reads `length` bytes of a file from `offset` (holes and unwritten extents read as zeros). */
  *readFile(i: Inode, map: FileMap, offset: number, length: number): Seq<Uint8Array> {
    const out = new Uint8Array(length);
    const bs = this.blockBytes;
    for (const e of map.extents) {
      if (e.unwritten) continue;
      const from = Math.max(offset, e.logical * bs);
      const to = Math.min(offset + length, (e.logical + e.length) * bs, i.sizeBytes);
      if (from >= to) continue;
      const first = Math.floor(from / bs);
      const last = Math.ceil(to / bs);
      const bytes = yield* readBytes(this.io, (e.physical + (first - e.logical)) * bs, (last - first) * bs);
      out.set(bytes.subarray(from - first * bs, to - first * bs), from - offset);
    }
    return out;
  }

  /**
   * Writes every changed block in block order, the group descriptors and bitmaps with fresh checksums,
   * then the superblock, then flushes: after it, the device holds a consistent file system.
   */
  *sync(): Seq<void> {
    const perBlock = this.blockBytes / this.sb.descBytes;
    for (const g of [...this.dirtyGroups].sort((a, b) => a - b)) {
      const d = this.groups[g];
      const bb = this.blockBitmaps.get(g);
      if (bb) {
        d.blockBitmapCsum = bitmapCsum(this.sb, bb, this.sb.blocksPerGroup);
        this.newBlock(d.blockBitmap, bb);
      }
      const ib = this.inodeBitmaps.get(g);
      if (ib) {
        d.inodeBitmapCsum = bitmapCsum(this.sb, ib, this.sb.inodesPerGroup);
        this.newBlock(d.inodeBitmap, ib);
      }
      const tb = descTableBlock(this.sb) + Math.floor(g / perBlock);
      const b = yield* this.block(tb);
      const at = (g % perBlock) * this.sb.descBytes;
      encodeGroupDesc(this.sb, d, b.subarray(at, at + this.sb.descBytes));
      this.dirty.add(tb);
    }
    this.dirtyGroups.clear();
    for (const n of [...this.dirty].sort((a, b) => a - b)) yield* writeBytes(this.io, n * this.blockBytes, this.cache.get(n)!);
    this.dirty.clear();
    if (this.sbDirty) {
      yield* writeBytes(this.io, SUPERBLOCK_OFFSET, sealSuperblock(this.sb));
      this.sbDirty = false;
    }
    yield* flushIo(this.io);
  }
}

function sameName(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** An absolute path's components; `.`/`..` and over-long paths are refused. */
export function splitPath(path: string): string[] {
  if (!path.startsWith('/')) throw new DconnectError('FS_NOT_FOUND', `'${path}' is not an absolute path`, 'write file paths from the file system root: sda:/data/big.bin');
  const parts = path.split('/').filter((p) => p.length > 0);
  if (parts.length > MAX_PATH_COMPONENTS) throw new DconnectError('FS_NOT_FOUND', `'${path}' has more than ${MAX_PATH_COMPONENTS} components`);
  for (const p of parts) {
    if (p === '.' || p === '..') throw new DconnectError('FS_NOT_FOUND', `'${path}': '.' and '..' are not taken in paths`, 'give the path without them');
    if (nameBytes(p).length > 255) throw new DconnectError('FS_NOT_FOUND', `'${p}' is longer than ext4's 255-byte names`);
  }
  return parts;
}
