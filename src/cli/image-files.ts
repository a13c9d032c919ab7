import { closeSync, constants, fchmodSync, ftruncateSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import type { DriveImage, DriveSave } from '../runtime/drive-images.js';
import { parseDriveFile } from './args.js';
import { checkOutputFile } from './output-paths.js';

/** Images are read and written in slices of this size; an all-zero slice is a hole (skipped on load, not written on save). */
const SLICE_BYTES = 1 << 20;

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

/** `--image sda=FILE`: checked now (the file exists and is a regular file), read when the drive is loaded. */
export function imageOf(spec: string): DriveImage {
  const { device, file } = parseDriveFile(spec, '--image');
  let sizeBytes: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    sizeBytes = st.size;
  } catch (e) {
    throw new DconnectError('BAD_IMAGE', `--image ${spec}: cannot use '${file}' (${(e as Error).message})`, 'give a raw image file, e.g. one made by mkfs.ext4 -d TREE img.ext4 64M');
  }
  return {
    device,
    sizeBytes,
    load(write) {
      const fd = openSync(file, 'r');
      try {
        const buf = new Uint8Array(SLICE_BYTES);
        for (let at = 0; at < sizeBytes; at += SLICE_BYTES) {
          const n = readSync(fd, buf, 0, Math.min(SLICE_BYTES, sizeBytes - at), at);
          const part = buf.subarray(0, n);
          if (!isZero(part)) write(at, part.slice());
        }
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** `--save sdb=FILE`: the path checked now; written after the copy as a sparse file (private, 0600) of the drive's size. */
export function saveOf(spec: string): DriveSave {
  const { device, file } = parseDriveFile(spec, '--save');
  checkOutputFile(file, '--save');
  return {
    device,
    save(read, sizeBytes, dataRanges) {
      const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
      try {
        fchmodSync(fd, 0o600); // private even when it replaces a file made with other permissions
        const buf = new Uint8Array(SLICE_BYTES);
        for (const r of dataRanges) {
          for (let at = r.start; at < r.end; at += SLICE_BYTES) {
            const part = buf.subarray(0, Math.min(SLICE_BYTES, r.end - at));
            read(at, part);
            if (!isZero(part)) writeSync(fd, part, 0, part.length, at);
          }
        }
        ftruncateSync(fd, sizeBytes);
      } finally {
        closeSync(fd);
      }
    },
  };
}
