import { DconnectError } from '../core/errors.js';
import { SparseMemory } from '../devices/sparse-memory.js';
import { runSync } from '../host/fs/block-io.js';
import { commitFile, makeDir, reserveFile } from '../host/fs/create.js';
import { Ext4 } from '../host/fs/ext4.js';
import { FORMAT_BLOCK_BYTES, formatExt4 } from '../host/fs/format.js';
import { ROOT_INO } from '../host/fs/inode.js';
import { StoreBlockIo, type DriveImage } from './drive-images.js';

/**
 * Generated drive images for experiments (`repro --only files`): a source file system holding a tree
 * of equal-sized files and an empty destination, both made by dconnect's own mkfs (host/fs/format.ts)
 * and its file creation code, so a run needs no e2fsprogs and is the same everywhere. File data is the
 * seeded pattern (`SparseMemory.fillPattern`), one region per extent: a 1 GiB file costs no memory
 * until the copy writes it.
 */

export interface FileTreeSpec {
  /** Bytes per file (any size; a partial last block is written whole). */
  fileBytes: number;
  files: number;
  /** Each file system's size: whole 128 MiB groups, and room for the tree. */
  fsBytes: number;
  /** The pattern's seed and the file systems' UUIDs. */
  seed: number;
}

/** Where the tree lives on the source (and lands on the destination): `/tree/f000`, `/tree/f001`, ... */
export const TREE_PATH = '/tree';
/** Times stamped on the images (model code reads no clock; any fixed value serves). */
export const TREE_TIME_SEC = 1_700_000_000;
const MAX_FILES = 10_000;

/** The source and destination images of a tree, for `runFileCopy`'s `images`. */
export function fileTreeImages(spec: FileTreeSpec, src: string, dst: string): DriveImage[] {
  if (!Number.isInteger(spec.files) || spec.files < 1 || spec.files > MAX_FILES) throw new DconnectError('BAD_OPTION', `a tree of ${spec.files} files: want 1..${MAX_FILES}`);
  if (!Number.isInteger(spec.fileBytes) || spec.fileBytes < 1) throw new DconnectError('BAD_OPTION', `files of ${spec.fileBytes} bytes: want a positive whole number`);
  const blocks = Math.ceil(spec.fileBytes / FORMAT_BLOCK_BYTES);
  // Data, an extent block per 340 extents and a directory block per 100 names: comfortably under half the file system.
  if (2 * spec.files * blocks * FORMAT_BLOCK_BYTES > spec.fsBytes) throw new DconnectError('BAD_OPTION', `${spec.files} files of ${spec.fileBytes} bytes need a file system larger than ${spec.fsBytes} bytes`, 'fewer or smaller files, or a larger file system');
  const source = new SparseMemory(`${src} image`, spec.fsBytes);
  const fills: { offsetBytes: number; lengthBytes: number }[] = [];
  const io = new StoreBlockIo(source, spec.fsBytes, 512);
  runSync(formatExt4(io, { sizeBytes: spec.fsBytes, nowSec: TREE_TIME_SEC, seed: spec.seed, label: 'source' }));
  const fs = runSync(Ext4.mount(io));
  const attrs = { mode: 0o644, uid: 1000, gid: 1000, atime: TREE_TIME_SEC, atimeExtra: 0, mtime: TREE_TIME_SEC, mtimeExtra: 0, ctime: TREE_TIME_SEC };
  const dir = runSync(makeDir(fs, ROOT_INO, TREE_PATH.slice(1), TREE_PATH, { ...attrs, mode: 0o755 }));
  const width = String(spec.files - 1).length;
  for (let k = 0; k < spec.files; k++) {
    const name = `f${String(k).padStart(Math.max(3, width), '0')}`;
    const res = runSync(reserveFile(fs, dir.ino, name, `${TREE_PATH}/${name}`, attrs, spec.fileBytes, [{ logical: 0, length: blocks }], false));
    for (const e of res.extents) fills.push({ offsetBytes: e.physical * FORMAT_BLOCK_BYTES, lengthBytes: e.length * FORMAT_BLOCK_BYTES });
    runSync(commitFile(fs, res));
  }
  runSync(fs.sync());
  const destination = new SparseMemory(`${dst} image`, spec.fsBytes);
  runSync(formatExt4(new StoreBlockIo(destination, spec.fsBytes, 512), { sizeBytes: spec.fsBytes, nowSec: TREE_TIME_SEC, seed: spec.seed + 1, label: 'destination' }));
  return [imageOf(src, source, fills, spec.seed), imageOf(dst, destination, [], spec.seed)];
}

function imageOf(device: string, mem: SparseMemory, fills: { offsetBytes: number; lengthBytes: number }[], seed: number): DriveImage {
  return {
    device,
    sizeBytes: mem.sizeBytes,
    load(write, pattern) {
      for (const r of mem.dataRanges()) write(r.start, mem.read(r.start, r.end - r.start));
      for (const f of fills) pattern(f.offsetBytes, f.lengthBytes, seed);
    },
  };
}
