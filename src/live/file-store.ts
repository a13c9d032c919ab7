/**
 * A drive's bytes in a real file (issue "Live fabric"): a sparse file of the drive's declared capacity
 * in the state directory, kept across restarts, so a box process that dies and restarts finds its
 * drives as they were. Reads of never-written ranges return zeros (the file's holes).
 *
 * Reads and writes are synchronous, inside the event that needs them (a page-cache copy: the model's
 * order of reads and writes is the file's). A read that continues the last one is served from a
 * read-ahead (up to 1 MiB, sized by what the last turn read), which every write over it updates and which lasts one turn of the event loop (another
 * process may write the file between turns), so it holds what the file does. Reads land in views of a shared slab, not a fresh
 * ArrayBuffer each (a backing store and a finalizer per 16 KiB unit cost more than the copy).
 * `flush` is fdatasync. Given `enter` (the box's scheduler's inject; unpaced), it runs on libuv's
 * thread pool, so the box's model goes on while the disk works, and its completion enters the model
 * through `enter`: only then does the NVMe Flush complete. Without (paced), it runs inside the call:
 * an injected completion would enter at the wall clock's simulated time, so the host's disk would
 * become the modelled drive's flush time; blocking keeps the model's time and shows as lag instead.
 *
 * Live code: it lives outside the model layers and is injected into the SSD model through the
 * builder's `storeFor`.
 */
import { closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, writeSync, writevSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import { spawnSync } from 'node:child_process';
import { piecesBytes, StoreError, type BlockStore } from '../devices/block-store.js';

/** Reads are carved from slabs of this size; a slab is dropped (to the GC, with its last view) when full. */
const READ_SLAB_BYTES = 1 << 20;
/** A read larger than this gets its own buffer: slabs are for the SSD's stream units. */
const MAX_SLAB_READ_BYTES = READ_SLAB_BYTES / 4;
/** The most a sequential read fetches at once (one drive's memory for it: bounded), bytes. */
const READ_AHEAD_BYTES = 1 << 20;
/** The least it fetches, bytes: a few of the SSD's 16 KiB stream units per pread. */
const MIN_READ_AHEAD_BYTES = 64 << 10;

export class FileStore implements BlockStore {
  private fd: number | null;
  /** Runs a flush's completion as an event of the model's scheduler (a box sets it at each unpaced session); null: flushes block (see the file comment). */
  enter: ((fn: () => void) => void) | null = null;
  /** fdatasyncs on the thread pool: the descriptor stays open until they are done. */
  private syncing = 0;
  private closing = false;
  private slab = new ArrayBuffer(READ_SLAB_BYTES);
  private slabUsed = 0;
  /** The read-ahead: [aheadAddr, aheadAddr + aheadLen) of the file (aheadLen 0: none), and where the last read ended. */
  private readonly ahead = new Uint8Array(READ_AHEAD_BYTES);
  private aheadAddr = 0;
  private aheadLen = 0;
  private lastReadEnd = -1;
  /**
   * How much the next read-ahead fetches: twice what the last turn took from it, within
   * [MIN_READ_AHEAD_BYTES, READ_AHEAD_BYTES]. A read-ahead lasts one turn of the event loop, and an
   * unpaced box runs ~1 ms of events per turn (~0.2-0.3 MiB of a copy): a fixed 1 MiB fetch read each
   * byte four times over.
   */
  private aheadFetchBytes = MIN_READ_AHEAD_BYTES;
  /** Bytes served from read-aheads in this turn of the event loop. */
  private aheadServedBytes = 0;

  /** Opens `path`, creating it as a sparse file of `sizeBytes` if it does not exist; an existing file must have that size. */
  constructor(
    readonly path: string,
    readonly sizeBytes: number,
  ) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw new DconnectError('BAD_TOPOLOGY', `a file-backed drive needs a positive capacity, not ${sizeBytes}`);
    this.fd = openSync(path, 'a+', 0o600);
    closeSync(this.fd);
    this.fd = openSync(path, 'r+');
    const size = fstatSync(this.fd).size;
    if (size === 0) ftruncateSync(this.fd, sizeBytes);
    else if (size !== sizeBytes) {
      closeSync(this.fd);
      this.fd = null;
      throw new DconnectError('BAD_TOPOLOGY', `${path} holds ${size} bytes, but the drive is declared with ${sizeBytes}`, 'use the topology the state directory was made with, or another --state directory');
    }
  }

  /**
   * Reserves the file's whole size on disk (`up --preallocate`), so writes cannot meet a full disk
   * later: fallocate(1), since Node has no posix_fallocate. Already reserved blocks cost nothing
   * again. Refused with a clear error where the file system cannot (some network file systems) or
   * the disk has no room now.
   */
  reserve(): void {
    const r = spawnSync('fallocate', ['-l', String(this.sizeBytes), this.path], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) {
      const why = r.error ? r.error.message : r.stderr.trim();
      throw new DconnectError('BAD_STATE', `--preallocate: could not reserve ${this.sizeBytes} bytes for ${this.path}: ${why}`, 'free space on that disk or choose a smaller ssd.capacityBytes, or start without --preallocate');
    }
  }

  private open(): number {
    if (this.fd === null || this.closing) throw new Error(`${this.path}: the store is closed`);
    return this.fd;
  }

  private check(addr: number, len: number): void {
    if (!(Number.isSafeInteger(addr) && addr >= 0 && len >= 0 && addr + len <= this.sizeBytes)) {
      throw new RangeError(`${this.path}: access [${addr}, ${addr + len}) outside 0..${this.sizeBytes}`);
    }
  }

  /** A zeroed array of `len` bytes the caller may keep: a view of the slab, or its own for a large read. */
  private buffer(len: number): Uint8Array {
    if (len > MAX_SLAB_READ_BYTES) return new Uint8Array(len);
    if (this.slabUsed + len > READ_SLAB_BYTES) {
      this.slab = new ArrayBuffer(READ_SLAB_BYTES);
      this.slabUsed = 0;
    }
    const out = new Uint8Array(this.slab, this.slabUsed, len);
    this.slabUsed += (len + 7) & ~7;
    return out;
  }

  /** `len` zero bytes for [addr, addr + len), which the caller knows the file holds (a hole), without reading it. */
  zeros(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    return this.buffer(len);
  }

  read(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    const out = this.buffer(len);
    // A sequential read (the SSD streams a command's units in order) is served from a read-ahead:
    // one pread per aheadFetchBytes instead of one per 16 KiB unit.
    const ahead = this.ahead;
    if (addr >= this.aheadAddr && addr + len <= this.aheadAddr + this.aheadLen) {
      out.set(ahead.subarray(addr - this.aheadAddr, addr - this.aheadAddr + len));
      this.lastReadEnd = addr + len;
      this.aheadServedBytes += len;
      return out;
    }
    if (addr === this.lastReadEnd && len <= READ_AHEAD_BYTES && this.fillAhead(addr, len)) {
      out.set(ahead.subarray(0, len));
      this.lastReadEnd = addr + len;
      this.aheadServedBytes += len;
      return out;
    }
    this.lastReadEnd = addr + len;
    this.readInto(addr, out);
    return out;
  }

  /** Reads [addr, addr + aheadFetchBytes) (at least `len`, to the end of the drive) into the read-ahead; false if that read failed (the caller reads just its own range, which reports any error). */
  private fillAhead(addr: number, len: number): boolean {
    const n = Math.min(Math.max(this.aheadFetchBytes, len), this.sizeBytes - addr);
    this.aheadLen = 0;
    try {
      this.readInto(addr, this.ahead.subarray(0, n));
    } catch {
      return false;
    }
    this.aheadAddr = addr;
    this.aheadLen = n;
    // Kept for this turn of the event loop only: between turns another process may write the file
    // (a user, a test seeding a drive), and the read-ahead must not hide what it wrote.
    if (!this.dropArmed) {
      this.dropArmed = true;
      setImmediate(this.dropAhead);
    }
    return true;
  }

  private dropArmed = false;
  private readonly dropAhead = (): void => {
    this.dropArmed = false;
    this.aheadLen = 0;
    this.aheadFetchBytes = Math.min(READ_AHEAD_BYTES, Math.max(MIN_READ_AHEAD_BYTES, 2 * this.aheadServedBytes));
    this.aheadServedBytes = 0;
  };

  private readInto(addr: number, out: Uint8Array): void {
    const len = out.length;
    let done = 0;
    const fd = this.open();
    while (done < len) {
      let n: number;
      try {
        n = readSync(fd, out, done, len - done, addr + done);
      } catch (e) {
        throw storeError(e, `reading ${this.path} at ${addr + done}`);
      }
      if (n === 0) break; // the file's size is the capacity, so this is never short; zeros stand in if it were
      done += n;
    }
  }

  write(addr: number, data: Uint8Array): void {
    this.check(addr, data.length);
    this.keepAhead(addr, data);
    this.writeAt(addr, data);
  }

  /** One pwritev for all of `pieces` (an SSD's stream units of one command: a system call each cost more than their copies). */
  writev(addr: number, pieces: readonly Uint8Array[]): void {
    const len = piecesBytes(pieces);
    this.check(addr, len);
    for (let i = 0, a = addr; i < pieces.length; a += pieces[i++].length) this.keepAhead(a, pieces[i]);
    const fd = this.open();
    let done: number;
    try {
      done = writevSync(fd, pieces as Uint8Array[], addr);
    } catch (e) {
      throw storeError(e, `writing ${this.path} at ${addr}`);
    }
    // A short write (rare: a signal, a full disk) finishes piece by piece from where it stopped.
    for (let i = 0, a = addr; i < pieces.length && done < len; a += pieces[i++].length) {
      const end = a + pieces[i].length;
      if (end <= addr + done) continue;
      const from = addr + done - a;
      this.writeAt(addr + done, pieces[i].subarray(from));
      done += pieces[i].length - from;
    }
  }

  /** The read-ahead keeps what the file holds: a write over it is copied in too. */
  private keepAhead(addr: number, data: Uint8Array): void {
    const from = Math.max(addr, this.aheadAddr);
    const to = Math.min(addr + data.length, this.aheadAddr + this.aheadLen);
    if (from < to) this.ahead.set(data.subarray(from - addr, to - addr), from - this.aheadAddr);
  }

  private writeAt(addr: number, data: Uint8Array): void {
    let done = 0;
    const fd = this.open();
    try {
      while (done < data.length) done += writeSync(fd, data, done, data.length - done, addr + done);
    } catch (e) {
      throw storeError(e, `writing ${this.path} at ${addr + done}`);
    }
  }

  flush(done: (ok: boolean) => void): void {
    const enter = this.enter; // a flush completes into the session it was asked in
    const fd = this.open();
    if (!enter) {
      let ok = true;
      try {
        fdatasyncSync(fd);
      } catch {
        ok = false;
      }
      return done(ok);
    }
    this.syncing++;
    fdatasync(fd, (err) => {
      this.syncing--;
      if (this.closing && this.syncing === 0) this.closeNow();
      enter(() => done(err === null));
    });
  }

  /** Makes every write durable and closes the file (once the fdatasyncs running are done); reads and writes then throw. */
  close(): void {
    if (this.fd === null || this.closing) return;
    fdatasyncSync(this.fd);
    this.closing = true;
    if (this.syncing === 0) this.closeNow();
  }

  private closeNow(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** A failed read or write of the drive's file as the SSD model takes it: that command fails, the box goes on. */
function storeError(e: unknown, what: string): StoreError {
  const code = (e as NodeJS.ErrnoException).code;
  return new StoreError(code === 'ENOSPC' || code === 'EDQUOT' ? 'no-space' : 'io', `${what}: ${(e as Error).message}`);
}
