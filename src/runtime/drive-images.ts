import { DconnectError } from '../core/errors.js';
import type { BlockDevice } from '../host/dc/manager.js';
import type { BlockIo, IoCounts } from '../host/fs/block-io.js';
import type { Op } from '../host/coroutine.js';
import { NvmeSsd } from '../devices/nvme-ssd.js';
import { SparseMemory } from '../devices/sparse-memory.js';
import type { BootedHost } from './boot.js';

/**
 * Getting file systems onto simulated drives and off them again: a drive's bytes come from an image
 * before anything runs (`--image sda=FILE`), and go out to one afterwards (`--save sdb=FILE`). Reading
 * and writing the files is the caller's (the CLI's); this side checks the fit and moves the bytes.
 */
export interface DriveImage {
  device: string;
  /** The image's size, checked against the drive's capacity before anything is written. */
  sizeBytes: number;
  /**
   * Calls `write` with the image's bytes (zero runs may be skipped: the drive starts zero), and
   * `pattern` for ranges that hold the seeded pattern (`SparseMemory.fillPattern`: a generated image's
   * file data, kept as a pattern region instead of materialized pages).
   */
  load(write: (offsetBytes: number, bytes: Uint8Array) => void, pattern: (offsetBytes: number, lengthBytes: number, seed: number) => void): void;
}

export interface DriveSave {
  device: string;
  /** Called with a reader of the drive's bytes, its capacity, and the ranges that may hold anything but zeros (the rest is a hole). */
  save(read: (offsetBytes: number, out: Uint8Array) => void, sizeBytes: number, dataRanges: { start: number; end: number }[]): void;
}

/** Checks that every image fits its drive (and names a drive once), then loads them all. */
export function loadImages(host: BootedHost, images: readonly DriveImage[]): void {
  const seen = new Set<string>();
  const targets = images.map((im) => {
    const d = host.manager.lookup(im.device);
    if (seen.has(d.name)) throw new DconnectError('BAD_IMAGE', `two images for ${d.name}`, 'give one --image per drive');
    seen.add(d.name);
    if (im.sizeBytes > d.capacityBytes) throw new DconnectError('BAD_IMAGE', `the image for ${d.name} is ${im.sizeBytes} bytes, larger than the drive's ${d.capacityBytes}`, `use a larger drive: --set ssd.capacityBytes=${im.sizeBytes} (or a smaller image)`);
    return { im, store: storeOf(host, d) };
  });
  for (const { im, store } of targets) im.load((off, bytes) => store.write(off, bytes), (off, len, seed) => store.fillPattern(off, len, seed));
}

export function saveDrives(host: BootedHost, saves: readonly DriveSave[]): void {
  for (const s of saves) {
    const d = host.manager.lookup(s.device);
    const store = storeOf(host, d);
    s.save((off, out) => store.readInto(off, out), d.capacityBytes, store.dataRanges());
  }
}

/** A drive's SSD model, whose store is in memory (the simulation harnesses seed, load, save and verify through it). */
export function ssdOf(host: BootedHost, d: BlockDevice): NvmeSsd {
  const s = host.fabric.slots.find((x) => x.box === d.box && x.slot === d.slot)!.device;
  if (!(s instanceof NvmeSsd)) throw new Error(`${d.name} is not an SSD model`);
  // The harness seeds and verifies through the in-memory store (patterns, reference copies).
  if (!(s.store instanceof SparseMemory)) throw new Error(`${d.name} keeps its bytes outside memory: the simulation harness needs in-memory stores`);
  return s as NvmeSsd;
}

export function storeOf(host: BootedHost, d: BlockDevice): SparseMemory {
  return ssdOf(host, d).store as SparseMemory;
}

/** A drive's store as a block device read and written at once: the verification's view, off the fabric. */
export class StoreBlockIo implements BlockIo {
  readonly counts: IoCounts = { readBytes: 0, writtenBytes: 0, reads: 0, writes: 0 };
  constructor(
    private readonly store: SparseMemory,
    readonly sizeBytes: number,
    readonly blockBytes: number,
  ) {}
  read(offsetBytes: number, lengthBytes: number): Op<Uint8Array> {
    return (k) => {
      const out = new Uint8Array(lengthBytes);
      this.store.readInto(offsetBytes, out);
      k(out);
    };
  }
  write(offsetBytes: number, data: Uint8Array): Op<void> {
    return (k) => {
      this.store.write(offsetBytes, data);
      k(undefined);
    };
  }
  flush(): Op<void> {
    return (k) => k(undefined);
  }
}
