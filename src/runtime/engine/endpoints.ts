import { patternBytes, SparseMemory } from '../../devices/sparse-memory.js';
import type { NvmeSsd } from '../../devices/nvme-ssd.js';
import { checkAborted } from './runner.js';

/**
 * The ends of a simulated transfer (docs/architecture.md "One transfer engine"): a drive's range or a
 * client's stream, each a window on an in-memory store. An end seeds (a source's bytes before the
 * move), takes the chunks the fast path skips (moved functionally, store to store, by reference when
 * the source is untouched pattern: `SparseMemory.copyFrom`), reports the bytes that arrived
 * (progress), and is read back for the verification (`verifyRange`).
 */
export interface Endpoint {
  /** The store holding the transfer's bytes, and where byte 0 of the transfer is in it. */
  readonly store: SparseMemory;
  readonly base: number;
  /** Bytes of the transfer that have arrived at this end so far (a destination's progress). */
  arrived(): number;
}

/** A range of a drive: its SSD model's store from `base` on; bytes arrive as the drive writes them. */
export class DriveRange implements Endpoint {
  private readonly writtenBefore: number;

  constructor(
    private readonly ssd: NvmeSsd<SparseMemory>,
    readonly base: number,
  ) {
    this.writtenBefore = ssd.counters.bytesWritten;
  }

  get store(): SparseMemory {
    return this.ssd.store;
  }

  arrived(): number {
    return this.ssd.counters.bytesWritten - this.writtenBefore;
  }
}

/**
 * A client's stream on a NIC's network: a sender's application data (the seeded pattern by stream
 * offset) or what a receiver got (a sink of the stream's length), byte 0 being the stream's first.
 */
export class ClientStream implements Endpoint {
  readonly store: SparseMemory;
  readonly base = 0;
  private received = 0;

  constructor(name: string, lengthBytes: number) {
    this.store = new SparseMemory(name, lengthBytes);
  }

  /** A receiver's frame payload at stream offset `off`. */
  receive(off: number, data: Uint8Array): void {
    this.store.write(off, data);
    this.received += data.length;
  }

  /** Bytes the stream's receiver got by other means (the fast path's skipped frames). */
  receivedElsewhere(n: number): void {
    this.received += n;
  }

  arrived(): number {
    return this.received;
  }
}

/** Fills a source end with the seeded pattern over the transfer's `length` bytes (its bytes before the move, as if written earlier). */
export function seedPattern(end: Endpoint, length: number, seed: number): void {
  end.store.fillPattern(end.base, length, seed);
}

/**
 * Tells a destination end what a right transfer leaves in it: the source's seeded pattern, shifted to
 * the destination's place. The store then keeps each page that arrives right as the pattern instead of
 * its bytes (`SparseMemory.expectPattern`), so moves of many GiB fit in memory; reads are unchanged.
 */
export function expectSeeded(dst: Endpoint, src: Endpoint, length: number, seed: number): void {
  dst.store.expectPattern(dst.base, length, seed, src.base - dst.base);
}

/** Moves bytes [at, at + length) of the transfer from one end to the other functionally (chunks the fast path skipped). */
export function copyAcross(from: Endpoint, to: Endpoint, at: number, length: number): void {
  to.store.copyFrom(from.store, from.base + at, to.base + at, length);
}

/** The seeded pattern a source end was filled with, as the verification expects it: bytes at transfer offset `off` into `buf`. */
export function patternOf(end: Endpoint, seed: number): (off: number, buf: Uint8Array) => void {
  return (off, buf) => patternBytes(seed, end.base + off, buf);
}

/** What an end holds now: bytes at transfer offset `off` into `buf`. */
export function contentOf(end: Endpoint): (off: number, buf: Uint8Array) => void {
  return (off, buf) => end.store.readInto(end.base + off, buf);
}

/** Bytes compared per step of the verification: two buffers of this size are reused (fresh 4 MiB arrays per chunk cost page faults). */
export const VERIFY_STEP_BYTES = 4 << 20;

/**
 * Compares `length` bytes, `expected` against `actual`, a step at a time (stopping at the first step
 * that differs); `report(off)` is told before each step. Reuses `scratch` (two buffers of
 * VERIFY_STEP_BYTES at least, or the length) across calls.
 */
export function verifyRange(length: number, expected: (off: number, buf: Uint8Array) => void, actual: (off: number, buf: Uint8Array) => void, scratch: VerifyScratch, report?: (off: number) => void): boolean {
  for (let off = 0; off < length; off += VERIFY_STEP_BYTES) {
    report?.(off);
    const n = Math.min(VERIFY_STEP_BYTES, length - off);
    const want = scratch.want.subarray(0, n);
    const got = scratch.got.subarray(0, n);
    expected(off, want);
    actual(off, got);
    if (!bytesEqual(want, got)) return false;
  }
  return true;
}

/** How often the verification reports its progress (`onVerify`), bytes: a multiple of its step. */
export const VERIFY_REPORT_BYTES = 256 << 20;

/** A transfer's destination end and what its source held (the seeded pattern, an image's bytes). */
export interface VerifiedEnd {
  expected: (off: number, buf: Uint8Array) => void;
  dst: Endpoint;
}

/**
 * The verification after a transfer: each destination end against its source, byte for byte, `length`
 * bytes each, one after another; `onVerify` hears the bytes compared over all of them every
 * VERIFY_REPORT_BYTES, and `signal` is looked at before each step (DconnectError 'ABORTED').
 */
export function verifyEnds(ends: readonly VerifiedEnd[], length: number, o: { signal?: AbortSignal; onVerify?: (doneBytes: number, totalBytes: number) => void } = {}): boolean[] {
  const scratch = verifyScratch(length);
  return ends.map((end, i) =>
    verifyRange(length, end.expected, contentOf(end.dst), scratch, (off) => {
      if (o.onVerify && off % VERIFY_REPORT_BYTES === 0) o.onVerify(i * length + off, ends.length * length);
      checkAborted(o.signal);
    }),
  );
}

/** The verification's two reusable buffers. */
export interface VerifyScratch {
  want: Uint8Array;
  got: Uint8Array;
}

/** Scratch for verifying ranges of up to `length` bytes. */
export function verifyScratch(length: number): VerifyScratch {
  const n = Math.min(VERIFY_STEP_BYTES, length);
  return { want: new Uint8Array(n), got: new Uint8Array(n) };
}

/** Byte equality, by the runtime's native compare (memcmp: ~20x a JavaScript loop over 1 GiB). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
