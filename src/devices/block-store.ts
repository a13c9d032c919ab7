/**
 * Where an SSD keeps its bytes: a `SparseMemory` in simulation, a file in live mode
 * (live/file-store.ts, injected through the builder's `storeFor`). The SSD model only reads, writes
 * and flushes; everything else about a store (patterns, reference copies) is the simulation harness's.
 */
export interface BlockStore {
  readonly sizeBytes: number;
  /** Copies `len` bytes out from `addr` (a fresh array, or a view the caller may keep). */
  read(addr: number, len: number): Uint8Array;
  /** Copies `data` in at `addr`. */
  write(addr: number, data: Uint8Array): void;
  /** Returns once every write so far is durable (an NVMe Flush completes after it). */
  flush(): void;
}
