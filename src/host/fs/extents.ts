import { DconnectError } from '../../core/errors.js';
import { crc32c } from './crc32c.js';
import { hiLo, hi32, lo32, set16, set32, u16, u32 } from './le.js';

/**
 * ext4 extent trees (docs.kernel.org/filesystems/ext4/ifork.html): a 12-byte header, then 12-byte
 * index entries (interior) or extents (leaves); the root is the inode's 60-byte i_block (4 entries),
 * other nodes whole blocks ending in a 4-byte crc32c tail. An extent's length above 32768 marks it
 * unwritten (allocated, reads as zeros): what a reservation is until its data has landed.
 */
export const EXTENT_MAGIC = 0xf30a;
/** The deepest tree accepted (the kernel's own limit is 5: EXT4_MAX_EXTENT_DEPTH). */
export const MAX_DEPTH = 5;
export const MAX_WRITTEN_LEN = 32768;
export const MAX_UNWRITTEN_LEN = 32767;
const ROOT_ENTRIES = 4;

export interface Extent {
  /** First file block it maps. */
  logical: number;
  /** First fs block. */
  physical: number;
  length: number;
  unwritten: boolean;
}

export interface TreeNode {
  entries: number;
  max: number;
  depth: number;
}

export function nodeHeader(b: Uint8Array, where: string): TreeNode {
  if (u16(b, 0) !== EXTENT_MAGIC) throw new DconnectError('FS_CORRUPT', `${where}: no extent header (magic 0x${u16(b, 0).toString(16)})`, 'check the image with e2fsck -fn');
  const h = { entries: u16(b, 2), max: u16(b, 4), depth: u16(b, 6) };
  if (h.entries > h.max || 12 + h.max * 12 > b.length || h.depth > MAX_DEPTH) throw new DconnectError('FS_CORRUPT', `${where}: extent header out of range (${h.entries}/${h.max} entries, depth ${h.depth})`, 'check the image with e2fsck -fn');
  return h;
}

export function leafEntry(b: Uint8Array, i: number): Extent {
  const o = 12 + 12 * i;
  const raw = u16(b, o + 4);
  const unwritten = raw > MAX_WRITTEN_LEN;
  return { logical: u32(b, o), physical: hiLo(u16(b, o + 6), u32(b, o + 8)), length: unwritten ? raw - MAX_WRITTEN_LEN : raw, unwritten };
}

export function indexEntry(b: Uint8Array, i: number): { logical: number; child: number } {
  const o = 12 + 12 * i;
  return { logical: u32(b, o), child: hiLo(u16(b, o + 8), u32(b, o + 4)) };
}

/** Entries a tree block holds: the tail's 4 bytes must fit after them. */
export function blockEntries(blockBytes: number): number {
  return Math.floor((blockBytes - 12 - 4) / 12);
}

export function blockCsumOk(b: Uint8Array, max: number, seed: number): boolean {
  const tail = 12 + 12 * max;
  return u32(b, tail) === crc32c(seed, b.subarray(0, tail));
}

export function sealBlock(b: Uint8Array, seed: number): void {
  const max = u16(b, 4);
  const tail = 12 + 12 * max;
  set32(b, tail, crc32c(seed, b.subarray(0, tail)));
}

function header(b: Uint8Array, entries: number, max: number, depth: number): void {
  set16(b, 0, EXTENT_MAGIC);
  set16(b, 2, entries);
  set16(b, 4, max);
  set16(b, 6, depth);
  set32(b, 8, 0);
}

function putLeaf(b: Uint8Array, i: number, e: Extent): void {
  const o = 12 + 12 * i;
  set32(b, o, e.logical);
  set16(b, o + 4, e.unwritten ? e.length + MAX_WRITTEN_LEN : e.length);
  set16(b, o + 6, hi32(e.physical) & 0xffff);
  set32(b, o + 8, lo32(e.physical));
}

function putIndex(b: Uint8Array, i: number, logical: number, child: number): void {
  const o = 12 + 12 * i;
  set32(b, o, logical);
  set32(b, o + 4, lo32(child));
  set16(b, o + 8, hi32(child) & 0xffff);
  set16(b, o + 10, 0);
}

/** How many tree blocks (outside the inode) a tree of `n` extents needs; the same shape `buildTree` makes. */
export function treeBlocksFor(n: number, blockBytes: number): number {
  const per = blockEntries(blockBytes);
  let total = 0;
  let level = n;
  while (level > ROOT_ENTRIES) {
    level = Math.ceil(level / per);
    total += level;
  }
  return total;
}

/**
 * Builds the tree of `extents` (sorted, non-overlapping) into a 60-byte root and tree blocks, taking
 * block numbers from `blocks` in order (exactly treeBlocksFor(n) of them). Blocks come back unsealed:
 * the caller seals them with the inode's checksum seed.
 */
export function buildTree(extents: readonly Extent[], blockBytes: number, blocks: readonly number[]): { root: Uint8Array; nodes: { block: number; bytes: Uint8Array }[] } {
  const per = blockEntries(blockBytes);
  const nodes: { block: number; bytes: Uint8Array }[] = [];
  let next = 0;
  // Level 0 items are extents; above, (first logical, child block) pairs.
  let items: { logical: number; child: number; extent?: Extent }[] = extents.map((e) => ({ logical: e.logical, child: 0, extent: e }));
  let depth = 0;
  while (items.length > ROOT_ENTRIES) {
    if (depth >= MAX_DEPTH) throw new DconnectError('FS_NO_SPACE', `an extent tree for ${extents.length} extents would be deeper than ${MAX_DEPTH}`);
    const up: { logical: number; child: number }[] = [];
    for (let i = 0; i < items.length; i += per) {
      const group = items.slice(i, i + per);
      const b = new Uint8Array(blockBytes);
      header(b, group.length, per, depth);
      group.forEach((it, k) => (it.extent ? putLeaf(b, k, it.extent) : putIndex(b, k, it.logical, it.child)));
      if (next >= blocks.length) throw new Error('buildTree: not enough tree blocks given');
      const block = blocks[next++];
      nodes.push({ block, bytes: b });
      up.push({ logical: group[0].logical, child: block });
    }
    items = up;
    depth++;
  }
  const root = new Uint8Array(60);
  header(root, items.length, ROOT_ENTRIES, depth);
  items.forEach((it, k) => (it.extent ? putLeaf(root, k, it.extent) : putIndex(root, k, it.logical, it.child)));
  return { root, nodes };
}

/** Splits block runs into extents no longer than an extent may be (unwritten ones are shorter by one). */
export function toExtents(runs: readonly { logical: number; physical: number; length: number }[], unwritten: boolean): Extent[] {
  const max = unwritten ? MAX_UNWRITTEN_LEN : MAX_WRITTEN_LEN;
  const out: Extent[] = [];
  for (const r of runs) {
    for (let at = 0; at < r.length; at += max) out.push({ logical: r.logical + at, physical: r.physical + at, length: Math.min(max, r.length - at), unwritten });
  }
  return out;
}
