import { DconnectError } from '../../core/errors.js';
import { crc32c } from './crc32c.js';
import { set16, set32, u16, u32 } from './le.js';

/**
 * Directory blocks (docs.kernel.org/filesystems/ext4/directory.html): linear `ext4_dir_entry_2`
 * records; with metadata_csum a 12-byte fake entry at the end carries the block's crc32c. htree
 * blocks (dx root and interior nodes) look like one empty record to a linear reader.
 */
export const FT = { REG: 1, DIR: 2, SYMLINK: 7 } as const;
const TAIL_BYTES = 12;
const TAIL_FT = 0xde;

export interface Dirent {
  offset: number;
  ino: number;
  recLen: number;
  name: Uint8Array;
  fileType: number;
}

const align4 = (n: number) => (n + 3) & ~3;
export const direntBytes = (nameLen: number): number => align4(8 + nameLen);

/** rec_len on disk: 65536-byte blocks store their whole-block record as 0 or 65535. */
function recLenOf(b: Uint8Array, o: number): number {
  const v = u16(b, o + 4);
  return b.length >= 65536 && (v === 65535 || v === 0) ? 65536 : v;
}

function hasTail(b: Uint8Array): boolean {
  const o = b.length - TAIL_BYTES;
  return u32(b, o) === 0 && u16(b, o + 4) === TAIL_BYTES && b[o + 6] === 0 && b[o + 7] === TAIL_FT;
}

/** The bytes records may use: the block without its checksum tail. */
export function usableBytes(b: Uint8Array, csum: boolean): number {
  return csum ? b.length - TAIL_BYTES : b.length;
}

/** Every record of a linear block (empty ones included), checked for sane lengths. */
export function records(b: Uint8Array, csum: boolean, where: string): Dirent[] {
  const end = usableBytes(b, csum);
  const out: Dirent[] = [];
  for (let o = 0; o < end; ) {
    const recLen = recLenOf(b, o);
    const nameLen = b[o + 6];
    if (recLen < 8 || recLen % 4 !== 0 || o + recLen > end || 8 + nameLen > recLen) throw new DconnectError('FS_CORRUPT', `${where}: directory record at byte ${o} has a bad length (${recLen})`, 'check the image with e2fsck -fn');
    out.push({ offset: o, ino: u32(b, o), recLen, name: b.subarray(o + 8, o + 8 + nameLen), fileType: b[o + 7] });
    o += recLen;
  }
  return out;
}

export function checkLeafCsum(b: Uint8Array, seed: number, where: string): void {
  if (!hasTail(b)) throw new DconnectError('FS_CORRUPT', `${where}: directory block has no checksum tail`, 'check the image with e2fsck -fn');
  const o = b.length - TAIL_BYTES;
  if (u32(b, o + 8) !== crc32c(seed, b.subarray(0, o))) throw new DconnectError('FS_CORRUPT', `${where}: directory block checksum does not match its contents`, 'check the image with e2fsck -fn');
}

export function sealLeaf(b: Uint8Array, seed: number): void {
  const o = b.length - TAIL_BYTES;
  set32(b, o, 0);
  set16(b, o + 4, TAIL_BYTES);
  b[o + 6] = 0;
  b[o + 7] = TAIL_FT;
  set32(b, o + 8, crc32c(seed, b.subarray(0, o)));
}

function putRecord(b: Uint8Array, o: number, ino: number, recLen: number, name: Uint8Array, fileType: number): void {
  set32(b, o, ino);
  set16(b, o + 4, recLen === 65536 ? 65535 : recLen);
  b[o + 6] = name.length;
  b[o + 7] = fileType;
  b.set(name, o + 8);
}

/**
 * Puts a record for (`name`, `ino`) into the block if some record has room after its own name (or is
 * empty); returns whether it did. The block must be sealed afterwards.
 */
export function insertRecord(b: Uint8Array, csum: boolean, name: Uint8Array, ino: number, fileType: number, where: string): boolean {
  const need = direntBytes(name.length);
  for (const r of records(b, csum, where)) {
    if (r.ino === 0 && r.recLen >= need) {
      putRecord(b, r.offset, ino, r.recLen, name, fileType);
      return true;
    }
    const used = direntBytes(r.name.length);
    if (r.ino !== 0 && r.recLen - used >= need) {
      set16(b, r.offset + 4, used);
      putRecord(b, r.offset + used, ino, r.recLen - used, name, fileType);
      return true;
    }
  }
  return false;
}

/** A fresh directory block: one empty record over all of it (and the tail). */
export function emptyLeaf(blockBytes: number, csum: boolean): Uint8Array {
  const b = new Uint8Array(blockBytes);
  putRecord(b, 0, 0, usableBytes(b, csum), new Uint8Array(0), 0);
  return b;
}

/** A new directory's first block: `.` and `..`. */
export function dotBlock(blockBytes: number, csum: boolean, self: number, parent: number): Uint8Array {
  const b = new Uint8Array(blockBytes);
  putRecord(b, 0, self, 12, new Uint8Array([0x2e]), FT.DIR);
  putRecord(b, 12, parent, usableBytes(b, csum) - 12, new Uint8Array([0x2e, 0x2e]), FT.DIR);
  return b;
}

// ---- htree nodes ----

/** A dx node's count/limit and entries: `at` is the byte where the count/limit pair sits. */
export interface DxNode {
  at: number;
  limit: number;
  count: number;
  /** (hash, block) pairs; entry 0's hash is 0 by definition. */
  entries: { hash: number; block: number }[];
}

export function dxNode(b: Uint8Array, at: number, where: string): DxNode {
  const limit = u16(b, at);
  const count = u16(b, at + 2);
  if (count === 0 || count > limit || at + limit * 8 > b.length) throw new DconnectError('FS_CORRUPT', `${where}: htree node count ${count} / limit ${limit} out of range`, 'check the image with e2fsck -fn');
  const entries = [];
  for (let i = 0; i < count; i++) entries.push({ hash: i === 0 ? 0 : u32(b, at + 8 * i), block: u32(b, at + 8 * i + 4) });
  return { at, limit, count, entries };
}

/** The dx tail's checksum (kernel `ext4_dx_csum`): the node up to its last entry, the tail's reserved word, a zero checksum word. */
export function dxCsum(b: Uint8Array, n: DxNode, seed: number): number {
  const tail = n.at + n.limit * 8;
  return crc32c(crc32c(crc32c(seed, b.subarray(0, n.at + n.count * 8)), b.subarray(tail, tail + 4)), new Uint8Array(4));
}

export function checkDxCsum(b: Uint8Array, n: DxNode, seed: number, where: string): void {
  const tail = n.at + n.limit * 8;
  if (tail + 8 > b.length || u32(b, tail + 4) !== dxCsum(b, n, seed)) throw new DconnectError('FS_CORRUPT', `${where}: htree node checksum does not match its contents`, 'check the image with e2fsck -fn');
}

/** The last entry whose hash is at most `hash`: the child that holds it. */
export function dxChild(n: DxNode, hash: number): number {
  let lo = 0;
  let hi = n.count - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (n.entries[mid].hash <= hash) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Inserts (hash, block) as entry `pos` of a dx node (pos >= 1), shifting the later ones; returns the node as it now is. The caller checked count < limit. */
export function dxInsert(b: Uint8Array, n: DxNode, pos: number, hash: number, block: number): DxNode {
  const from = n.at + 8 * pos;
  b.copyWithin(from + 8, from, n.at + 8 * n.count);
  set32(b, from, hash);
  set32(b, from + 4, block);
  set16(b, n.at + 2, n.count + 1);
  const entries = [...n.entries.slice(0, pos), { hash, block }, ...n.entries.slice(pos)];
  return { ...n, count: n.count + 1, entries };
}

/** Writes a dx node's tail (reserved word, checksum) for its current count. */
export function sealDx(b: Uint8Array, n: DxNode, seed: number): void {
  const tail = n.at + n.limit * 8;
  set32(b, tail, 0);
  set32(b, tail + 4, dxCsum(b, n, seed));
}

/** A leaf block holding `recs` packed in order, the last record reaching the end (or the checksum tail); unsealed. */
export function leafOf(blockBytes: number, csum: boolean, recs: readonly { name: Uint8Array; ino: number; fileType: number }[]): Uint8Array {
  if (recs.length === 0) return emptyLeaf(blockBytes, csum);
  const b = new Uint8Array(blockBytes);
  const end = usableBytes(b, csum);
  let o = 0;
  recs.forEach((r, k) => {
    const len = k === recs.length - 1 ? end - o : direntBytes(r.name.length);
    putRecord(b, o, r.ino, len, r.name, r.fileType);
    o += len;
  });
  return b;
}
