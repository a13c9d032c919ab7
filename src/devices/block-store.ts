/**
 * Where an SSD keeps its bytes: a `SparseMemory` in simulation, a file in live mode
 * (live/file-store.ts, injected through the builder's `storeFor`). The SSD model only reads, writes
 * and flushes; everything else about a store (patterns, reference copies) is the simulation harness's.
 */
/**
 * A store that could not read or write (a drive file's disk is full, or an I/O error): the SSD
 * completes that one command with an error status and goes on (nvme-ssd.ts), as a real drive whose
 * media failed would. Anything else a store throws is a bug and stops the model.
 */
export class StoreError extends Error {
  constructor(
    /** `no-space`: ENOSPC/EDQUOT (NVMe Capacity Exceeded); `io`: anything else (Write Fault, Unrecovered Read Error). */
    readonly kind: 'no-space' | 'io',
    message: string,
  ) {
    super(message);
  }
}

/** Bytes in `pieces` together (what a `writev` writes). */
export function piecesBytes(pieces: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

export interface BlockStore {
  readonly sizeBytes: number;
  /** Copies `len` bytes out from `addr` (a fresh array, or a view the caller may keep); throws StoreError when the backing store fails. */
  read(addr: number, len: number): Uint8Array;
  /** Copies `data` in at `addr`; throws StoreError when the backing store fails (what was written before it may stay: a torn write). */
  write(addr: number, data: Uint8Array): void;
  /**
   * Copies `pieces`, back to back, in at `addr`, as `write` would each in turn (a drive file: one
   * system call for them all); throws StoreError as `write` does.
   */
  writev(addr: number, pieces: readonly Uint8Array[]): void;
  /**
   * Makes every write so far durable, then calls `done` (true; false: it could not, the NVMe Flush
   * fails) inside an event of the model's scheduler: at once, within this call (memory has nothing to
   * make durable), or later (a file's fsync runs off the event loop and its completion enters the
   * scheduler as an event; live/file-store.ts). The model goes on meanwhile.
   */
  flush(done: (ok: boolean) => void): void;
}
