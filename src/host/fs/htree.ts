import { DconnectError } from '../../core/errors.js';
import type { Seq } from '../coroutine.js';
import { dxInsert, insertRecord, leafOf, records, sealDx, sealLeaf } from './dirent.js';
import { dirHash } from './dirhash.js';
import type { DxStep, Ext4, FileMap } from './ext4.js';
import type { Inode } from './inode.js';

/**
 * Splitting a full htree leaf, as ext4 does (fs/ext4/namei.c `do_split`): the leaf's entries are
 * sorted by hash and cut near the middle at a hash boundary (no hash is left on both sides, so no
 * continuation bit is needed); the upper half moves to a new block appended to the directory, the
 * parent index node gets an entry (the upper half's lowest hash -> the new block) after the one that
 * led to the leaf, and the new name goes into the half its hash selects. Both leaves and the index
 * node are resealed (leaf tails, the dx tail's crc32c). An index node that is itself full is not
 * split (a directory of tens of thousands of names): refused before anything changes.
 */

export interface LeafProbe {
  logical: number;
  map: FileMap;
  hash: number;
  hashVersion: number;
  path: DxStep[];
}

/** Appends one block to a directory (its extent tree rebuilt); returns its logical block. Given by create.ts. */
export type AppendBlock = (dir: Inode, map: FileMap, bytes: Uint8Array) => Seq<number>;

export function* splitLeafAndInsert(fs: Ext4, dir: Inode, probe: LeafProbe, name: Uint8Array, ino: number, fileType: number, append: AppendBlock): Seq<void> {
  const csum = fs.sb.metadataCsum;
  const seed = fs.csumSeedOf(dir);
  const parent = probe.path[probe.path.length - 1];
  const where = `directory inode ${dir.ino} block ${probe.logical}`;
  if (parent.node.count >= parent.node.limit) {
    throw new DconnectError('FS_NO_SPACE', `the htree of directory inode ${dir.ino} has a full index node (${parent.node.limit} entries), and dconnect splits leaves but not index nodes`, 'copy into another directory, or rebuild the index with e2fsck -fD on the destination image');
  }
  const e = probe.map.extents.find((x) => probe.logical >= x.logical && probe.logical < x.logical + x.length);
  if (!e) throw new DconnectError('FS_CORRUPT', `${where}: the htree leaf is a hole`);
  const leafP = e.physical + probe.logical - e.logical;
  const leaf = yield* fs.block(leafP);
  const live = records(leaf, csum, where)
    .filter((r) => r.ino !== 0)
    .map((r) => ({ name: r.name.slice(), ino: r.ino, fileType: r.fileType, hash: dirHash(r.name, probe.hashVersion, fs.sb.hashSeed, fs.sb.unsignedHash) }))
    .sort((a, b) => a.hash - b.hash);
  const cut = hashBoundary(live.map((r) => r.hash));
  if (cut === null) throw new DconnectError('FS_NO_SPACE', `${where}: every name in the full htree leaf has the same hash; it cannot be split`, 'copy into another directory');
  const lower = live.slice(0, cut);
  const upper = live.slice(cut);
  const splitHash = upper[0].hash;
  // The new leaf first (it allocates a block and rewrites the directory's extent tree), then the old one rewritten in place.
  const upperBlock = leafOf(fs.blockBytes, csum, upper);
  const newLogical = yield* append(dir, probe.map, upperBlock);
  leaf.set(leafOf(fs.blockBytes, csum, lower));
  const pb = yield* fs.block(parent.physical);
  const node = dxInsert(pb, parent.node, parent.entry + 1, splitHash, newLogical);
  if (csum) sealDx(pb, node, seed);
  fs.markDirty(parent.physical);
  const target = probe.hash >= splitHash ? upperBlock : leaf;
  if (!insertRecord(target, csum, name, ino, fileType, where)) throw new DconnectError('FS_NO_SPACE', `${where}: no room for the name even after splitting the leaf`);
  if (csum) {
    sealLeaf(leaf, seed);
    sealLeaf(upperBlock, seed);
  }
  fs.markDirty(leafP); // the new block is the cache's own array (newBlock): already dirty, changed in place
}

/**
 * Where to cut entries sorted by hash: the middle, moved down (else up) to where the hash changes, so
 * equal hashes stay in one leaf; null if every hash is the same.
 */
export function hashBoundary(hashes: readonly number[]): number | null {
  const mid = hashes.length >> 1;
  for (let k = mid; k > 0; k--) if (hashes[k] !== hashes[k - 1]) return k;
  for (let k = mid + 1; k < hashes.length; k++) if (hashes[k] !== hashes[k - 1]) return k;
  return null;
}
