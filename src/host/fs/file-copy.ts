import { DconnectError } from '../../core/errors.js';
import { call, type Op, type Seq } from '../coroutine.js';
import { flushIo } from './block-io.js';
import { attrsOf, commitFile, makeDir, reserveFile, type Reservation } from './create.js';
import { Ext4, splitPath, type FileMap } from './ext4.js';
import { isDir, isReg, type Inode } from './inode.js';
import type { BlockDevice } from '../dc/manager.js';
import type { DcOperator } from '../dc/operator.js';

/**
 * A file copy between two ext4 file systems in the order that keeps both consistent at every step
 * (research: resolve, reserve, device copy, commit): the DC manager's side. It resolves the source
 * files' written extents (holes and unwritten extents stay holes), reserves every destination as
 * unwritten extents and syncs, hands the run list (source byte, destination byte, length) to `move`
 * (the DC operator's direct moves, or a conventional copy), flushes the destination device, then
 * commits (extents written, sizes set) and syncs. A failure before the commit leaves the destination
 * files preallocated and empty (i_size 0): e2fsck-clean, and never another file's old data.
 */

/** The deepest directory tree and the most entries a tree copy walks (bounds on the walk). */
export const MAX_TREE_DEPTH = 64;
export const MAX_TREE_ENTRIES = 1_000_000;

export interface CopyRun {
  srcByte: number;
  dstByte: number;
  lengthBytes: number;
}

export interface FileCopyOptions {
  /** Copy a directory tree (`-r`); without it the source must be a regular file. */
  recursive: boolean;
  /** Replace existing destination files. */
  force: boolean;
  /** The new inodes' change and creation time, seconds (the caller's clock: model code reads none). */
  nowSec: number;
}

export interface FileCopyPlanEntry {
  srcPath: string;
  dstPath: string;
  sizeBytes: number;
  /** Data bytes (whole blocks of written extents). */
  dataBytes: number;
  extents: number;
}

export interface FileCopyResult {
  files: FileCopyPlanEntry[];
  directories: number;
  /** Entries that are neither regular files nor directories (symlinks, devices): not copied. */
  skipped: string[];
  runs: CopyRun[];
  bytes: number;
  dataBytes: number;
}

/** The run list of one file: its written extents laid over the destination's, split where either side's extents break, merged where both continue. */
export function runsOf(src: FileMap, dst: Reservation, blockBytes: number): CopyRun[] {
  const out: CopyRun[] = [];
  for (const s of src.extents) {
    if (s.unwritten) continue;
    for (const d of dst.extents) {
      const from = Math.max(s.logical, d.logical);
      const to = Math.min(s.logical + s.length, d.logical + d.length);
      if (from >= to) continue;
      const run = { srcByte: (s.physical + from - s.logical) * blockBytes, dstByte: (d.physical + from - d.logical) * blockBytes, lengthBytes: (to - from) * blockBytes };
      const last = out[out.length - 1];
      if (last && last.srcByte + last.lengthBytes === run.srcByte && last.dstByte + last.lengthBytes === run.dstByte) last.lengthBytes += run.lengthBytes;
      else out.push(run);
    }
  }
  return out;
}

/** The written ranges of a file in blocks, adjacent extents merged (what the destination reserves). */
function dataRanges(map: FileMap): { logical: number; length: number }[] {
  const out: { logical: number; length: number }[] = [];
  for (const e of map.extents) {
    if (e.unwritten) continue;
    const last = out[out.length - 1];
    if (last && last.logical + last.length === e.logical) last.length += e.length;
    else out.push({ logical: e.logical, length: e.length });
  }
  return out;
}

interface Pending {
  srcPath: string;
  dstPath: string;
  inode: Inode;
  map: FileMap;
  dstDir: number;
  name: string;
}

function* existsAt(fs: Ext4, path: string): Seq<Inode | null> {
  try {
    return yield* fs.lookup(path);
  } catch (e) {
    if (e instanceof DconnectError && e.code === 'FS_NOT_FOUND') return null;
    throw e;
  }
}

const join = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/**
 * Where a copy lands, as cp decides: into an existing directory under the source's name, else at the
 * path itself, whose parent must exist.
 */
function* parentOf(fs: Ext4, path: string, srcName: string): Seq<{ dir: Inode; name: string; path: string }> {
  const parts = splitPath(path);
  const at = yield* existsAt(fs, path);
  if (at && isDir(at)) return { dir: at, name: srcName, path: join(path.replace(/\/+$/, '') || '/', srcName) };
  if (parts.length === 0) throw new DconnectError('FS_EXISTS', 'the destination is the root directory; name a file or directory under it');
  const parentPath = '/' + parts.slice(0, -1).join('/');
  const dir = yield* fs.lookup(parentPath);
  if (!isDir(dir)) throw new DconnectError('FS_NOT_FOUND', `'${parentPath}' is not a directory on the destination`);
  return { dir, name: parts[parts.length - 1], path };
}

/** A copy between its reservation and its commit: what a live job records to redo the move and commit after a crash. */
export interface ReservedCopy {
  result: FileCopyResult;
  reservations: Reservation[];
}

/**
 * Resolve, reserve, move, commit: the whole copy in one sequence (`reserveCopy`, the move, `commitCopy`).
 * A live job runs the three apart, recording the reservation between them (live/file-job.ts).
 */
export function* copyFiles(src: Ext4, dst: Ext4, srcPath: string, dstPath: string, opts: FileCopyOptions, move: (runs: CopyRun[]) => Op<void | Error>): Seq<FileCopyResult> {
  const { result, reservations } = yield* reserveCopy(src, dst, srcPath, dstPath, opts);
  // The device copy, then (in commitCopy) the destination's data made durable before the commit points at it.
  if (result.runs.length > 0) {
    const moved = yield* call<void | Error>(move(result.runs));
    if (moved instanceof Error) throw moved;
  }
  yield* commitCopy(dst, reservations);
  return result;
}

/** Resolves the source and reserves every destination file as unwritten extents, synced: nothing of the data has moved yet. */
export function* reserveCopy(src: Ext4, dst: Ext4, srcPath: string, dstPath: string, opts: FileCopyOptions): Seq<ReservedCopy> {
  if (src.blockBytes !== dst.blockBytes) {
    throw new DconnectError('FS_UNSUPPORTED', `the source file system has ${src.blockBytes}-byte blocks and the destination ${dst.blockBytes}-byte blocks; a direct copy moves whole blocks`, 'make both images with the same block size (mkfs.ext4 -b 4096)');
  }
  const root = yield* src.lookup(srcPath);
  const srcParts = splitPath(srcPath);
  if (srcParts.length === 0) throw new DconnectError('BAD_OPTION', 'the source is the root directory', 'name a directory under it (sda:/data) with -r');
  const result: FileCopyResult = { files: [], directories: 0, skipped: [], runs: [], bytes: 0, dataBytes: 0 };
  const pending: Pending[] = [];
  const target = yield* parentOf(dst, dstPath, srcParts[srcParts.length - 1]);
  const { dir: dstParent, name } = target;
  dstPath = target.path;
  if (src === dst) {
    // One file system: never a file onto itself, never a tree into itself (the walk would copy its own copies).
    const norm = '/' + srcParts.join('/');
    const dstNorm = '/' + splitPath(dstPath).join('/');
    if (dstNorm === norm || dstNorm.startsWith(norm + '/')) throw new DconnectError('BAD_OPTION', `'${dstPath}' is '${srcPath}' or inside it, on the same drive`, 'copy to a path outside the source');
    const there = yield* existsAt(dst, dstPath);
    if (there && there.ino === root.ino) throw new DconnectError('BAD_OPTION', `'${dstPath}' is the source file itself`);
  }
  // Resolve: every source file's map, and the destination directories (made now: empty directories are consistent at any moment).
  if (isReg(root)) {
    pending.push({ srcPath, dstPath, inode: root, map: yield* src.fileMap(root), dstDir: dstParent.ino, name });
  } else if (isDir(root)) {
    if (!opts.recursive) throw new DconnectError('BAD_OPTION', `'${srcPath}' is a directory`, 'give -r to copy a directory tree');
    const top = yield* makeDir(dst, dstParent.ino, name, dstPath, attrsOf(root, opts.nowSec));
    result.directories++;
    const stack: { inode: Inode; srcPath: string; dstPath: string; dstIno: number; depth: number }[] = [{ inode: root, srcPath, dstPath, dstIno: top.ino, depth: 0 }];
    let seen = 0;
    while (stack.length > 0) {
      const d = stack.pop()!;
      for (const e of yield* src.readDir(d.inode)) {
        if (e.name === '.' || e.name === '..') continue;
        if (++seen > MAX_TREE_ENTRIES) throw new DconnectError('BAD_OPTION', `'${srcPath}' has more than ${MAX_TREE_ENTRIES} entries`, 'copy its subdirectories one at a time');
        const i = yield* src.inode(e.ino);
        const sp = join(d.srcPath, e.name);
        const dp = join(d.dstPath, e.name);
        if (isReg(i)) pending.push({ srcPath: sp, dstPath: dp, inode: i, map: yield* src.fileMap(i), dstDir: d.dstIno, name: e.name });
        else if (isDir(i)) {
          if (d.depth + 1 > MAX_TREE_DEPTH) throw new DconnectError('BAD_OPTION', `'${sp}' is deeper than ${MAX_TREE_DEPTH} levels`);
          const made = yield* makeDir(dst, d.dstIno, e.name, dp, attrsOf(i, opts.nowSec));
          result.directories++;
          stack.push({ inode: i, srcPath: sp, dstPath: dp, dstIno: made.ino, depth: d.depth + 1 });
        } else result.skipped.push(sp);
      }
    }
  } else throw new DconnectError('BAD_OPTION', `'${srcPath}' is neither a regular file nor a directory`);

  // Reserve every destination as unwritten extents, and make that durable before any data moves.
  const reservations: Reservation[] = [];
  for (const p of pending) {
    const res = yield* reserveFile(dst, p.dstDir, p.name, p.dstPath, attrsOf(p.inode, opts.nowSec), p.inode.sizeBytes, dataRanges(p.map), opts.force);
    reservations.push(res);
    const runs = runsOf(p.map, res, src.blockBytes);
    const dataBytes = runs.reduce((n, r) => n + r.lengthBytes, 0);
    result.runs.push(...runs);
    result.files.push({ srcPath: p.srcPath, dstPath: p.dstPath, sizeBytes: p.inode.sizeBytes, dataBytes, extents: p.map.extents.length });
    result.bytes += p.inode.sizeBytes;
    result.dataBytes += dataBytes;
  }
  yield* dst.sync();
  return { result, reservations };
}

/**
 * Flushes the destination (the moved data durable before anything points at it), marks every
 * reserved extent written, sets the sizes, and syncs. Redone after a crash, it finds each file either
 * still as reserved or already committed (a crash after the sync), and commits only the former; a file
 * that is neither (changed since by someone else) is refused before anything is written.
 */
export function* commitCopy(dst: Ext4, reservations: readonly Reservation[]): Seq<void> {
  yield* flushIo(dst.io);
  const todo: Reservation[] = [];
  for (const r of reservations) {
    const i = yield* dst.inode(r.ino);
    const m = yield* dst.fileMap(i);
    const same = m.extents.length === r.extents.length && m.extents.every((e, k) => e.logical === r.extents[k].logical && e.physical === r.extents[k].physical && e.length === r.extents[k].length);
    if (!isReg(i) || !same) throw new DconnectError('FS_CHANGED', `destination inode ${r.ino} no longer holds the extents this copy reserved`, 'the destination changed since the copy reserved it; copy again (with --force to replace the file)');
    if (m.extents.every((e) => e.unwritten) && i.sizeBytes === 0) todo.push(r);
    else if (m.extents.some((e) => e.unwritten) || i.sizeBytes !== r.sizeBytes) throw new DconnectError('FS_CHANGED', `destination inode ${r.ino} is half committed (some extents written, size ${i.sizeBytes})`, 'check the destination with e2fsck -fn; copy again with --force');
  }
  for (const r of todo) yield* commitFile(dst, r);
  yield* dst.sync();
}

/**
 * The DC operator's move of a whole run list (simulation and live): one move whose chunks end at run
 * boundaries, so the pipeline (`depth` commands over both drives) runs on from one run into the next,
 * through `slots` (the DC buffer's, or host memory's). `written` hears each chunk's bytes as it lands.
 */
export function moveRuns(operator: DcOperator, ends: { src: BlockDevice; dst: BlockDevice; chunkBytes: number; depth: number; slots: number[] }, runs: readonly CopyRun[], written?: (doneBytes: number, totalBytes: number) => void): Op<void | Error> {
  return (resume) => {
    const chunk = ends.chunkBytes;
    const total = runs.reduce((n, r) => n + r.lengthBytes, 0);
    const segments = runs.map((r) => ({ srcOffset: r.srcByte, dstOffset: r.dstByte, lengthBytes: r.lengthBytes }));
    const sizes = segments.flatMap((sg) => Array.from({ length: Math.ceil(sg.lengthBytes / chunk) }, (_, k) => Math.min(chunk, sg.lengthBytes - k * chunk)));
    let done = 0;
    const observer = {
      chunkWritten: (c: number) => {
        done += sizes[c];
        written?.(done, total);
        return 0;
      },
    };
    operator.move({ src: ends.src, srcOffset: 0, dst: ends.dst, dstOffset: 0, lengthBytes: total, chunkBytes: chunk, depth: ends.depth, slots: ends.slots, segments, observer }, () => resume(undefined), (e) => resume(e));
  };
}

/** Verification slice: files are compared this many bytes at a time. */
const VERIFY_STEP_BYTES = 4 << 20;

export interface FileCheck {
  dstPath: string;
  verified: boolean;
  /** Why not, when not. */
  problem?: string;
}

/**
 * Reads every copied file back through both file systems and compares: the same size, the same bytes
 * (holes read as zeros on both sides), and no extent of the destination left unwritten.
 */
export function* verifyFiles(src: Ext4, dst: Ext4, files: readonly FileCopyPlanEntry[]): Seq<FileCheck[]> {
  const out: FileCheck[] = [];
  for (const f of files) {
    const si = yield* src.lookup(f.srcPath);
    const di = yield* dst.lookup(f.dstPath);
    const sm = yield* src.fileMap(si);
    const dm = yield* dst.fileMap(di);
    let problem: string | undefined;
    if (si.sizeBytes !== di.sizeBytes) problem = `size ${di.sizeBytes}, source ${si.sizeBytes}`;
    else if (dm.extents.some((e) => e.unwritten)) problem = 'an extent is still unwritten';
    for (let off = 0; off < si.sizeBytes && !problem; off += VERIFY_STEP_BYTES) {
      const n = Math.min(VERIFY_STEP_BYTES, si.sizeBytes - off);
      const a = yield* src.readFile(si, sm, off, n);
      const b = yield* dst.readFile(di, dm, off, n);
      // The runtime's native compare first (memcmp); the byte that differs only when they do.
      if (Buffer.compare(a, b) !== 0) problem = `byte ${off + a.findIndex((x, k) => x !== b[k])} differs`;
    }
    out.push({ dstPath: f.dstPath, verified: problem === undefined, ...(problem ? { problem } : {}) });
  }
  return out;
}
