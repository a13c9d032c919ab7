/**
 * The SHA-256 of a range of the seeded data pattern, computed on a second core while the caller
 * simulates. A verified move's destination equals its source byte for byte, so the destination's
 * digest is the source pattern's, and that is known before the move starts: hashing it beside the
 * simulation takes the hash (~0.6 s per GiB, the largest byte cost of a fast move) off the critical
 * path. The caller still compares every destination byte with the pattern, and hashes the
 * destination itself when they differ.
 *
 * Below WORKER_MIN_BYTES a thread costs more than it saves, and the digest is computed inline when
 * asked for. The wait is synchronous (Atomics.wait on shared memory), so callers stay synchronous;
 * a worker that fails in any way reports it through the same word and the digest is computed inline.
 * The result is a pure function of (seed, addr, len): no timing reaches any output.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { patternBytes } from './sparse-memory.js';

/** Ranges below this are hashed inline: starting a thread (~40 ms) costs more than hashing 64 MiB. */
export const WORKER_MIN_BYTES = 64 << 20;
/** Bytes generated and hashed per step (bounds the worker's buffer). */
const STEP_BYTES = 4 << 20;

const PENDING = 0;
const DONE = 1;
const FAILED = 2;

export interface PendingDigest {
  /** The hex SHA-256 of the range; blocks until the worker has it. */
  result(): string;
  /** Whether a worker computed it (for tests); known once `result` returned. */
  readonly inWorker: boolean;
}

/**
 * The hex SHA-256 of `len` bytes that `fill(off, buf)` writes piece by piece (buf holds the bytes at
 * offset off), through one reused buffer of STEP_BYTES: a GiB is hashed in bounded memory.
 */
export function sha256InSteps(len: number, fill: (off: number, buf: Uint8Array) => void): string {
  const hash = createHash('sha256');
  const buf = new Uint8Array(Math.min(STEP_BYTES, len));
  for (let off = 0; off < len; off += STEP_BYTES) {
    const b = buf.subarray(0, Math.min(STEP_BYTES, len - off));
    fill(off, b);
    hash.update(b);
  }
  return hash.digest('hex');
}

/** Hashes the pattern over [addr, addr + len) on this thread. */
export function patternDigestInline(seed: number, addr: number, len: number): string {
  return sha256InSteps(len, (off, b) => patternBytes(seed, addr + off, b));
}

/** Starts hashing the pattern over [addr, addr + len), on a worker thread when the range is large. */
export function startPatternDigest(seed: number, addr: number, len: number, opts: { forceWorker?: boolean } = {}): PendingDigest {
  const inline = (): PendingDigest => {
    let memo: string | null = null;
    return { result: () => (memo ??= patternDigestInline(seed, addr, len)), inWorker: false };
  };
  if (len < WORKER_MIN_BYTES && !opts.forceWorker) return inline();
  const shared = new SharedArrayBuffer(4 + 32);
  const state = new Int32Array(shared, 0, 1);
  try {
    // An eval'd loader, so that even a failure to load the module is reported through `state`
    // (the main thread is blocked in Atomics.wait and would never see a worker 'error' event).
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const state = new Int32Array(workerData.shared, 0, 1);
       import(workerData.module).then((m) => m.runPatternDigest(workerData)).catch(() => { Atomics.store(state, 0, ${FAILED}); Atomics.notify(state, 0); });`,
      { eval: true, workerData: { module: import.meta.url, shared, seed, addr, len } },
    );
    worker.unref();
  } catch {
    return inline();
  }
  let inWorker = false;
  let memo: string | null = null;
  return {
    result() {
      if (memo !== null) return memo;
      Atomics.wait(state, 0, PENDING);
      inWorker = Atomics.load(state, 0) === DONE;
      memo = inWorker ? Buffer.from(new Uint8Array(shared, 4, 32)).toString('hex') : patternDigestInline(seed, addr, len);
      return memo;
    },
    get inWorker() {
      return inWorker;
    },
  };
}

/** The worker's side: hash, store the digest, then flip the state word. */
export function runPatternDigest(data: { shared: SharedArrayBuffer; seed: number; addr: number; len: number }): void {
  const state = new Int32Array(data.shared, 0, 1);
  try {
    const hex = patternDigestInline(data.seed, data.addr, data.len);
    new Uint8Array(data.shared, 4, 32).set(Buffer.from(hex, 'hex'));
    Atomics.store(state, 0, DONE);
  } catch {
    Atomics.store(state, 0, FAILED);
  }
  Atomics.notify(state, 0);
}
