/** Reading and writing a live drive's file directly, as the live tests check what moved (test helpers). */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

/** `length` bytes of the file at `offset`. */
export function fileRange(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(length);
    readSync(fd, b, 0, length, offset);
    return Buffer.from(b.buffer, 0, length);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` into the file at `offset` (the file exists: a drive's image). */
export function writeRange(path: string, offset: number, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.length), 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

export const sha = (b: Buffer): string => createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.length)).digest('hex');
