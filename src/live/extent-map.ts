/**
 * Which ranges of a drive file hold data and which are holes, for NBD's `base:allocation`
 * (nbd-backend.ts asks the box that owns the file). Node's fs has no SEEK_DATA/SEEK_HOLE, so the box
 * tracks it: a `TrackedStore` wraps the drive's `FileStore` and marks every granule a write touches as
 * data. What this process has not seen (a file from an earlier run) is unknown until asked about: then
 * it is read, and a granule of zeros counts as a hole (it reads as zeros either way, which is what
 * `base:allocation` promises with HOLE|ZERO). A fresh file (no block allocated) is all holes at once.
 *
 * Whether anyone else wrote the file (a tool or a test, while the box runs) is told by its stamp (size,
 * allocated blocks, inode, mtime, ctime) against the one after this store's own last write: then
 * what the map says of holes is forgotten (data stays data) and read afresh when asked.
 *
 * A clean close keeps the map beside the file (`<drive>.img.extents`), stamped with the file's size,
 * the same stamp; the next open trusts it only if the stamp is unchanged, so a file written since (by a
 * box that crashed after more writes, or by anyone else) is read afresh.
 * A wrong "hole" would make copy tools skip data; a wrong "data" only costs time: when in doubt, unknown.
 *
 * Bounds: one byte of state per GRANULE_BYTES of capacity (128 KiB for 8 GiB); at most SCAN_BYTES of
 * the file read per question (a longer unknown range is answered in part: NBD lets a reply be shorter).
 */
import { appendFileSync, closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { piecesBytes, type BlockStore } from '../devices/block-store.js';
import type { FileStore } from './file-store.js';

/** Tracking granule: a write anywhere in one marks all of it data (the safe answer). */
export const GRANULE_BYTES = 64 << 10;
/** At most this much of the file is read to answer one question. */
export const SCAN_BYTES = 64 << 20;
/** At most this many extents per answer (the NBD reply's size). */
export const MAX_EXTENTS = 1024;

const UNKNOWN = 0;
const HOLE = 1;
const DATA = 2;

/** base:allocation flags (NetworkBlockDevice proto.md): NBD_STATE_HOLE | NBD_STATE_ZERO for a hole, 0 for data. */
export const EXTENT_HOLE = 3;
export const EXTENT_DATA = 0;

export interface Extent {
  lengthBytes: number;
  /** EXTENT_HOLE or EXTENT_DATA. */
  state: number;
}

const ZERO_GRANULE = new Uint8Array(GRANULE_BYTES);
const MAP_MAGIC = 'dconnect-extents-1';

/** What must be unchanged for what the map says of holes to hold: the drive file's identity and every sign of a write. */
function stamp(fd: number): string {
  const st = fstatSync(fd, { bigint: true });
  return `${MAP_MAGIC} ${GRANULE_BYTES} ${st.size} ${st.blocks} ${st.ino} ${st.mtimeNs} ${st.ctimeNs}`;
}

export class TrackedStore implements BlockStore {
  readonly sizeBytes: number;
  private readonly granules: Uint8Array;
  private readonly mapPath: string;
  /** Read-only, for reading unknown granules and for the file's stamp. */
  private fd: number | null;
  /** The file's stamp after this store's last write (or at open): another means someone else wrote it. */
  private stamped: string;

  constructor(private readonly file: FileStore) {
    this.sizeBytes = file.sizeBytes;
    this.granules = new Uint8Array(Math.ceil(file.sizeBytes / GRANULE_BYTES));
    this.mapPath = `${file.path}.extents`;
    this.fd = openSync(file.path, 'r');
    this.stamped = stamp(this.fd);
    if (fstatSync(this.fd).blocks === 0) this.granules.fill(HOLE); // nothing allocated: nothing written
    else this.loadKept();
  }

  private open(): number {
    if (this.fd === null) throw new Error(`${this.file.path}: the store is closed`);
    return this.fd;
  }

  /**
   * A write by anyone but this store (a tool or a test writing the drive file while the box runs) may
   * have put data where the map says hole: then the holes are unknown again (data stays data).
   */
  private checkStamp(): void {
    this.restamp(); // this store's own writes so far are its own
    const now = stamp(this.open());
    if (now === this.stamped) return;
    for (let g = 0; g < this.granules.length; g++) if (this.granules[g] === HOLE) this.granules[g] = UNKNOWN;
    this.stamped = now;
  }

  /** Takes the map a clean close kept, if the file is provably as it was then (see the file comment). */
  private loadKept(): void {
    let kept: Buffer;
    try {
      kept = readFileSync(this.mapPath);
    } catch {
      return; // none kept
    }
    const nl = kept.indexOf(10);
    if (nl < 0 || kept.subarray(0, nl).toString('utf8') !== this.stamped || kept.length - nl - 1 !== this.granules.length) return;
    const states = kept.subarray(nl + 1);
    if (states.some((v) => v > DATA)) return;
    this.granules.set(states);
  }

  /**
   * A range the map knows is all holes reads as zeros without the file: reading a hole makes the
   * kernel zero-fill page-cache pages, which was 15% of a box's CPU copying from a never-written drive.
   * The map's holes are trusted after this turn's stamp check (`checkTurn`).
   */
  read(addr: number, len: number): Uint8Array {
    if (len > 0 && this.allHoles(addr, len)) {
      this.checkTurn();
      if (this.allHoles(addr, len)) return this.file.zeros(addr, len);
    }
    return this.file.read(addr, len);
  }

  private allHoles(addr: number, len: number): boolean {
    const last = Math.floor((addr + len - 1) / GRANULE_BYTES);
    for (let g = Math.floor(addr / GRANULE_BYTES); g <= last; g++) if (this.granules[g] !== HOLE) return false;
    return true;
  }

  /**
   * The stamp is checked before a turn's first write or read of holes and taken after its last write
   * (an fstat costs ~2-15 us; a drive writes in 16 KiB units): a writer elsewhere within the same turn
   * goes unseen.
   */
  private checkTurn(): void {
    if (this.turnChecked) return;
    this.turnChecked = true;
    this.checkStamp();
    setImmediate(this.endTurn);
  }

  /** Whether this turn checked the stamp (`checkTurn`). */
  private turnChecked = false;
  private readonly endTurn = (): void => {
    this.turnChecked = false;
    this.restamp();
  };

  write(addr: number, data: Uint8Array): void {
    if (data.length === 0) return this.file.write(addr, data);
    this.markData(addr, data.length);
    this.file.write(addr, data);
  }

  writev(addr: number, pieces: readonly Uint8Array[]): void {
    const len = piecesBytes(pieces);
    if (len > 0) this.markData(addr, len);
    this.file.writev(addr, pieces);
  }

  /** [addr, addr + len) is about to hold data: its granules are no longer holes. */
  private markData(addr: number, len: number): void {
    this.checkTurn();
    this.writing = true;
    this.granules.fill(DATA, Math.floor(addr / GRANULE_BYTES), Math.floor((addr + len - 1) / GRANULE_BYTES) + 1);
  }

  /** Whether this store's writes since the last stamp still await it (`restamp`). */
  private writing = false;
  private restamp(): void {
    if (!this.writing) return;
    this.writing = false;
    if (this.fd !== null) this.stamped = stamp(this.fd);
  }

  /** Where the file's asynchronous flush completes (file-store.ts: the box scheduler's inject, unpaced). */
  set enter(fn: ((fn: () => void) => void) | null) {
    this.file.enter = fn;
  }

  flush(done: (ok: boolean) => void): void {
    this.file.flush(done);
  }

  /** Closes the file and keeps the map beside it (best effort: without it the next open reads what it must). */
  close(): void {
    if (this.fd === null) return;
    this.file.close();
    try {
      this.checkStamp();
      const tmp = `${this.mapPath}.tmp`;
      writeFileSync(tmp, this.stamped + '\n', { mode: 0o600 });
      appendFileSync(tmp, this.granules);
      renameSync(tmp, this.mapPath);
    } catch {
      try {
        unlinkSync(this.mapPath); // an old map must not outlive the file's change
      } catch {
        // none there
      }
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  /**
   * The extents of [offset, offset + length), in order, adjacent ones of a state merged; they cover
   * the range, or a prefix of it when more than SCAN_BYTES of unknown granules would have to be read
   * or more than MAX_EXTENTS extents listed.
   */
  extents(offset: number, length: number): Extent[] {
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length > 0 && offset + length <= this.sizeBytes)) {
      throw new RangeError(`${this.file.path}: extents of [${offset}, ${offset + length}) outside 0..${this.sizeBytes}`);
    }
    this.checkStamp();
    const out: Extent[] = [];
    const end = offset + length;
    let scanned = 0;
    const buf = new Uint8Array(GRANULE_BYTES);
    for (let pos = offset; pos < end; ) {
      const g = Math.floor(pos / GRANULE_BYTES);
      let st = this.granules[g]!;
      if (st === UNKNOWN) {
        if (scanned >= SCAN_BYTES) break;
        const n = Math.min(GRANULE_BYTES, this.sizeBytes - g * GRANULE_BYTES);
        readSync(this.open(), buf, 0, n, g * GRANULE_BYTES);
        scanned += n;
        st = this.granules[g] = Buffer.compare(buf.subarray(0, n), ZERO_GRANULE.subarray(0, n)) === 0 ? HOLE : DATA;
      }
      const next = Math.min(end, (g + 1) * GRANULE_BYTES);
      const state = st === HOLE ? EXTENT_HOLE : EXTENT_DATA;
      const last = out[out.length - 1];
      if (last && last.state === state) last.lengthBytes += next - pos;
      else if (out.length === MAX_EXTENTS) break;
      else out.push({ lengthBytes: next - pos, state });
      pos = next;
    }
    return out;
  }
}
