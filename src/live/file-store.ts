/**
 * A drive's bytes in a real file (issue "Live fabric"): a sparse file of the drive's declared capacity
 * in the state directory, kept across restarts, so a box process that dies and restarts finds its
 * drives as they were. Reads of never-written ranges return zeros (the file's holes); `flush` is
 * fsync, so an NVMe Flush completes only once the bytes are on the disk.
 *
 * Live code (synchronous file I/O, inside the event that needs it): it lives outside the model layers
 * and is injected into the SSD model through the builder's `storeFor`.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import type { BlockStore } from '../devices/block-store.js';

export class FileStore implements BlockStore {
  private fd: number | null;

  /** Opens `path`, creating it as a sparse file of `sizeBytes` if it does not exist; an existing file must have that size. */
  constructor(
    readonly path: string,
    readonly sizeBytes: number,
  ) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw new DconnectError('BAD_TOPOLOGY', `a file-backed drive needs a positive capacity, not ${sizeBytes}`);
    this.fd = openSync(path, 'a+');
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

  private open(): number {
    if (this.fd === null) throw new Error(`${this.path}: the store is closed`);
    return this.fd;
  }

  private check(addr: number, len: number): void {
    if (!(Number.isSafeInteger(addr) && addr >= 0 && len >= 0 && addr + len <= this.sizeBytes)) {
      throw new RangeError(`${this.path}: access [${addr}, ${addr + len}) outside 0..${this.sizeBytes}`);
    }
  }

  read(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = readSync(this.open(), out, done, len - done, addr + done);
      if (n === 0) break; // the file's size is the capacity, so this is never short; zeros stand in if it were
      done += n;
    }
    return out;
  }

  write(addr: number, data: Uint8Array): void {
    this.check(addr, data.length);
    let done = 0;
    while (done < data.length) done += writeSync(this.open(), data, done, data.length - done, addr + done);
  }

  flush(): void {
    fsyncSync(this.open());
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
