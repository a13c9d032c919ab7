import { closeSync, constants, existsSync, fchmodSync, ftruncateSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { blockName } from '../topology/kinds/ssd.js';
import { slotParams } from '../topology/device-registry.js';
import type { SsdConfig } from '../topology/kinds/ssd.js';
import type { Topology } from '../topology/schema.js';
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

/**
 * `dconnect up --image sda=FILE`: seeds a live drive's file from a raw image at the fabric's first
 * start. Every image is checked before any is written: the drive exists (SSDs are named in slot order
 * across the boxes, as the host enumerates them), the image fits its capacity, and the drive's file is
 * absent or holds nothing yet (a sparse file with no block allocated: a fresh drive), so a drive's
 * data is never overwritten. Returns the writer: each file made 0600 at the drive's capacity, zero
 * slices left as holes.
 */
export function seedDriveFiles(t: Topology, specs: readonly string[], drivePath: (slot: string) => string): () => string[] {
  const ssds = t.boxes.flatMap((b) => b.slots.flatMap((sl, i) => (sl.kind === 'ssd' ? [{ box: b.name, slot: i }] : [])));
  const seen = new Set<string>();
  const plans = specs.map((spec) => {
    const image = imageOf(spec);
    const at = ssds.findIndex((_, k) => blockName(k) === image.device);
    if (at < 0) throw new DconnectError('UNKNOWN_DEVICE', `--image ${spec}: topology ${t.name} has no drive ${image.device}`, `its drives: ${ssds.map((_, k) => blockName(k)).join(', ')}`);
    if (seen.has(image.device)) throw new DconnectError('BAD_IMAGE', `two images for ${image.device}`, 'give one --image per drive');
    seen.add(image.device);
    const { box, slot } = ssds[at];
    const capacity = (slotParams(t, box, slot) as SsdConfig).capacityBytes;
    if (image.sizeBytes > capacity) throw new DconnectError('BAD_IMAGE', `the image for ${image.device} is ${image.sizeBytes} bytes, larger than the drive's ${capacity}`, `a larger drive: dconnect up --set ssd.capacityBytes=${image.sizeBytes} (on a new --state), or a smaller image`);
    const path = drivePath(`${box}.slot${slot}`);
    if (existsSync(path) && statSync(path).blocks > 0) throw new DconnectError('BAD_IMAGE', `--image ${spec}: ${image.device}'s drive file ${path} already holds data`, 'an image seeds a new drive only: use another --state directory, or remove the drive file first (its data is lost)');
    return { image, path, capacity };
  });
  return () =>
    plans.map(({ image, path, capacity }) => {
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, 0o600);
      try {
        fchmodSync(fd, 0o600);
        ftruncateSync(fd, capacity);
        image.load((at, bytes) => void writeSync(fd, bytes, 0, bytes.length, at), () => {
          throw new Error('an image file holds bytes, not patterns');
        });
      } finally {
        closeSync(fd);
      }
      return `${image.device} <- ${image.sizeBytes} bytes into ${path}`;
    });
}
