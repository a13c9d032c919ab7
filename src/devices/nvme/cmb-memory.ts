import { labelCallback, type StateDigest } from '../../core/digest.js';
import type { Scheduler } from '../../core/scheduler.js';
import { BandwidthServer } from '../bandwidth-server.js';
import { SparseMemory } from '../sparse-memory.js';
import type { Segment } from './prp.js';

/** A CMB's physical parameters (the SSD's `cmb*` fields; docs/calibration.md "The NVMe CMB"). */
export interface CmbParams {
  /** Bytes of controller memory exposed in BAR2 (a power of two, at least 4 KiB). */
  cmbSizeBytes: number;
  /** The controller memory's bandwidth, MB/s, shared by peers' requests and the controller's own transfers. */
  cmbMBps: number;
  /** The controller's access latency to it, ns (its own transfers; peers' requests are served as registers are). */
  cmbLatencyNs: number;
}

/**
 * The memory behind an NVMe controller's CMB (NVMe 1.4 §4.7) and its timing: one bandwidth server
 * for everything that touches it. A peer's MWr or MRd reaches it through the PCIe core like a
 * register (served at once: the memory is faster than the controller's link, so the link is what
 * paces peers); its bytes still occupy the memory's bandwidth, which delays the controller's own
 * transfers behind them. The controller's own transfers (a write command's data fetched from the CMB,
 * a read command's data placed in it) never cross PCIe: they take the latency and their bytes' time
 * on the server, then the data moves.
 */
export class CmbMemory {
  readonly memory: SparseMemory;
  private readonly server: BandwidthServer;
  private readonly latencyPs: number;
  /** peerWriteBytes/peerReadBytes: through the BAR; ownReadBytes/ownWriteBytes: the controller's own transfers. */
  readonly counters = { cmbPeerWriteBytes: 0, cmbPeerReadBytes: 0, cmbOwnReadBytes: 0, cmbOwnWriteBytes: 0 };

  constructor(
    private readonly name: string,
    private readonly scheduler: Scheduler,
    readonly params: CmbParams,
  ) {
    this.memory = new SparseMemory(`${name}.cmb`, params.cmbSizeBytes);
    this.server = new BandwidthServer(1e6 / params.cmbMBps, scheduler);
    this.latencyPs = Math.round(params.cmbLatencyNs * 1000);
  }

  get sizeBytes(): number {
    return this.params.cmbSizeBytes;
  }

  /** A peer's posted write at `offset` in the CMB. */
  peerWrite(offset: number, data: Uint8Array): void {
    this.server.serve(this.scheduler.now(), data.length);
    this.memory.write(offset, data);
    this.counters.cmbPeerWriteBytes += data.length;
  }

  /** A peer's read of `lengthBytes` at `offset`. */
  peerRead(offset: number, lengthBytes: number): Uint8Array {
    this.server.serve(this.scheduler.now(), lengthBytes);
    this.counters.cmbPeerReadBytes += lengthBytes;
    return this.memory.read(offset, lengthBytes);
  }

  /**
   * Where segments lie relative to the CMB at bus address `base`: 'none' outside it (the DMA engine
   * moves them), 'all' wholly inside (the controller moves them itself), 'mixed' (refused: the model
   * moves a transfer one way or the other).
   */
  placement(segs: readonly Segment[], base: number): 'none' | 'all' | 'mixed' {
    let inside = 0;
    for (const s of segs) {
      const off = s.address - base;
      if (off >= 0 && off + s.lengthBytes <= this.params.cmbSizeBytes) inside++;
      else if (off + s.lengthBytes > 0 && off < this.params.cmbSizeBytes) return 'mixed';
    }
    return inside === 0 ? 'none' : inside === segs.length ? 'all' : 'mixed';
  }

  /** The controller reads segments of its own CMB (a write command's data): `cb` with the bytes once served. */
  ownRead(segs: readonly Segment[], base: number, cb: (data: Uint8Array) => void, label: string): void {
    let total = 0;
    for (const s of segs) total += s.lengthBytes;
    const now = this.scheduler.now();
    const done = this.server.serve(now + this.latencyPs, total);
    this.scheduler.schedule(
      done - now,
      labelCallback(() => {
        const out = new Uint8Array(total);
        let at = 0;
        for (const s of segs) {
          out.set(this.memory.read(s.address - base, s.lengthBytes), at);
          at += s.lengthBytes;
        }
        this.counters.cmbOwnReadBytes += total;
        cb(out);
      }, `${this.name}>cmb-read:${label}`),
    );
  }

  /** The controller writes data into segments of its own CMB (a read command's data): `done` once served. */
  ownWrite(segs: readonly Segment[], base: number, data: Uint8Array, done: (() => void) | null, label: string): void {
    const now = this.scheduler.now();
    const end = this.server.serve(now + this.latencyPs, data.length);
    this.scheduler.schedule(
      end - now,
      labelCallback(() => {
        let at = 0;
        for (const s of segs) {
          this.memory.write(s.address - base, data.subarray(at, at + s.lengthBytes));
          at += s.lengthBytes;
        }
        this.counters.cmbOwnWriteBytes += data.length;
        done?.();
      }, `${this.name}>cmb-write:${label}`),
    );
  }

  /** Its counters, with the memory's busy time spent up to now (`cmbBusyPs`, a resource of the bottleneck analysis). */
  snapshot(): Record<string, number> {
    return { ...this.counters, cmbBusyPs: this.server.doneBusyPs() };
  }

  /** The memory's backlog (the scheduled transfers are the scheduler's events, labelled). */
  digest(d: StateDigest): void {
    this.server.digest(d);
  }
}
