import type { StateDigest } from '../core/digest.js';
import { LevelTimer } from '../core/level-timer.js';
import { NumberRing, Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import type { ConfigSpace } from '../pcie/config-space.js';
import type { PciePort } from '../pcie/link.js';
import { digestTlps, type Tlp } from '../pcie/tlp.js';
import { partBytes, sliceBurst, spanBytes } from '../pcie/burst.js';
import { SparseMemory } from './sparse-memory.js';
import { BandwidthServer } from './bandwidth-server.js';
import { PcieEndpoint, type EndpointDevice } from './pcie-endpoint.js';

/** Read completion boundary of the FPGA's PCIe core, bytes (Link Control RCB = 0: 64 B). */
const READ_COMPLETION_BOUNDARY = 64;

/**
 * Who the DC buffer says it is: a memory controller (05:00:00) on an FPGA card, Altera's vendor id (the
 * paper's control circuit is adapted from Altera's PCIe-to-DDR2 reference design), device id 0xdc00.
 */
export const DC_BUFFER_ID = { classCode: 0x050000, vendorId: 0x1172, deviceId: 0xdc00 } as const;

export interface DcBufferParams {
  /** DDR2 capacity exposed through BAR0, bytes (a power of two). */
  sizeBytes: number;
  /** DDR sustained transfer rate, 10^6 bytes/s. */
  ddrMBps: number;
  /** DDR access latency (controller + CAS), ns; pipelined behind the transfer of earlier requests. */
  ddrLatencyNs: number;
  /** rx_request_fifo depth, requests (a request holds its entry until DDR has served it). */
  rxRequestFifoEntries: number;
  /** pending_read_fifo depth, read requests awaiting their completions. */
  pendingReadFifoEntries: number;
  /** Max payload size of the completions tx_ddr builds, bytes. */
  mpsBytes: number;
}

export interface DcBufferCounters {
  [k: string]: number;
  writeRequests: number;
  readRequests: number;
  bytesWritten: number;
  bytesRead: number;
  completions: number;
  rxFifoFullStalls: number;
  pendingFifoFullStalls: number;
  maxRxFifo: number;
  maxPendingReads: number;
  ddrBusyPs: number;
  /** Time read requests waited before DDR served them (in the PCIe core's buffer, then behind earlier requests), summed. */
  readQueuedPs: number;
  /** Requests refused as Unsupported Request: memory requests not wholly inside BAR0 (a read gets a UR completion), other kinds. */
  unsupportedRequests: number;
  /** Of those, posted writes (no completion tells the sender: the count is the only trace). */
  writesOutsideBar: number;
}

/**
 * The DC buffer (paper Fig. 4): BAR-mapped DDR2 on an FPGA card in a box slot. rx_pcie puts memory
 * writes and reads into rx_request_fifo; reads are also recorded in pending_read_fifo. rx_ddr serves
 * requests in order against DDR; for a read, tx_ddr takes the request's details from
 * pending_read_fifo and builds the completions when the data returns. Both FIFOs are bounded: when full,
 * requests stay in the PCIe core's receive buffer, withholding flow-control credits from the sender.
 */
export class DcBuffer implements EndpointDevice {
  readonly config: ConfigSpace;
  readonly ddr: SparseMemory;
  /** The FPGA's PCIe core: configuration, BAR0 decode, UR, and the completions waiting for the link. */
  private readonly endpoint: PcieEndpoint;
  /** Requests held in the PCIe core's receive buffer (bounded by the link's credits). */
  private readonly held = new Ring<Tlp>();
  private rxFifo = 0;
  private readonly pendingReads = new Ring<Tlp>();
  /** Read requests in pending_read_fifo, counting a read burst's constituents (what its depth bounds). */
  private pendingReadCount = 0;
  /** Requests DDR is serving, in order: they finish in the order they started (see rxDdr). */
  private readonly inDdr = new Ring<Tlp>();
  private readonly ddrServer: BandwidthServer;
  private readonly ddrLatencyPs: number;
  readonly counters: DcBufferCounters = {
    writeRequests: 0,
    readRequests: 0,
    bytesWritten: 0,
    bytesRead: 0,
    completions: 0,
    rxFifoFullStalls: 0,
    pendingFifoFullStalls: 0,
    maxRxFifo: 0,
    maxPendingReads: 0,
    ddrBusyPs: 0,
    readQueuedPs: 0,
    unsupportedRequests: 0,
    writesOutsideBar: 0,
  };
  /**
   * Burst granularity (`admitTimed`): when DDR is done with each of the requests in rx_request_fifo and
   * pending_read_fifo, oldest first (at most each FIFO's depth: the next request takes the oldest's
   * entry), when the last request left the PCIe core's buffer, and the requests whose credits return
   * later (their leaving times beside them; released in order, one event each). The requests in
   * `leaving` and `reading` are bounded by the link's credits and the FIFOs' depths.
   */
  private readonly rxDonePs = new NumberRing();
  private readonly readDonePs = new NumberRing();
  private lastLeftPs = 0;
  private readonly leaving = new Ring<Tlp>();
  private readonly leavingPs = new Ring<Float64Array>();
  /** Reads whose data DDR has not yet returned, oldest first: each with its bytes and its requests' DDR finish times. */
  private readonly reading = new Ring<Tlp>();
  private readonly readingData = new Ring<Uint8Array>();
  private readonly readingDonePs = new Ring<Float64Array>();
  /** Read requests held in the PCIe core's buffer, over time (trace only). */
  private readonly readsHeld: LevelTimer;
  private readsHeldCount = 0;

  constructor(
    readonly name: string,
    private readonly scheduler: Scheduler,
    readonly params: DcBufferParams,
    port: PciePort,
    link: { generation: number; lanes: number },
    trace?: TraceRegistry,
  ) {
    // Target only (no DMA engine): requests reach memoryRequest, which holds them in the Fig. 4 FIFOs.
    this.endpoint = new PcieEndpoint(name, scheduler, port, {
      identity: { ...DC_BUFFER_ID, bars: [{ sizeBytes: params.sizeBytes, prefetchable: true }] },
      link,
      counters: this.counters,
    });
    this.config = this.endpoint.config;
    this.ddr = new SparseMemory(`${name}.ddr2`, params.sizeBytes);
    this.ddrServer = new BandwidthServer(1e6 / params.ddrMBps, scheduler);
    this.ddrLatencyPs = Math.round(params.ddrLatencyNs * 1000);
    this.readsHeld = new LevelTimer(scheduler);
    this.endpoint.attach(this);
    // ddrBusyPs as spent up to now (not booked ahead); readQueuedPs with the reads still held.
    trace?.register(`dcbuffer.${name}`, () => ({ ...this.counters, ddrBusyPs: this.ddrServer.doneBusyPs(), readQueuedPs: this.counters.readQueuedPs + this.readsHeld.readPs() }));
  }

  /** The Fig. 4 FIFOs, the DDR's backlog and the completions waiting for the link. */
  digest(d: StateDigest): void {
    d.section(this.name);
    d.num(this.rxFifo);
    for (const r of [this.held, this.pendingReads, this.inDdr, this.leaving, this.reading]) digestTlps(d, r);
    for (const r of [this.rxDonePs, this.readDonePs]) {
      d.num(r.length);
      for (let i = 0; i < r.length; i++) d.until(r.at(i));
    }
    d.until(this.lastLeftPs);
    d.name(this.leave, `${this.name}>leave`);
    d.name(this.readReturned, `${this.name}>read-returned`);
    this.endpoint.digestTx(d);
    this.ddrServer.digest(d);
    d.name(this.ddrDone, `${this.name}>ddr-done`);
  }

  /**
   * rx_pcie: a memory request wholly inside BAR0 (the PCIe core answered configuration and refused the
   * rest) waits in the PCIe core's receive buffer until rx_request_fifo takes it.
   */
  memoryRequest(tlp: Tlp): void {
    if (this.endpoint.bursts) return this.admitTimed(tlp);
    this.held.push(tlp);
    if (tlp.kind === 'MRd') this.countHeld(1);
    this.admit();
  }

  /** Moves held requests into rx_request_fifo (and reads into pending_read_fifo) while both have room. */
  private admit(): void {
    const p = this.params;
    while (this.held.length > 0) {
      const tlp = this.held.peek()!;
      if (this.rxFifo >= p.rxRequestFifoEntries) {
        this.counters.rxFifoFullStalls++;
        return;
      }
      const isRead = tlp.kind === 'MRd';
      if (isRead && this.pendingReadCount >= p.pendingReadFifoEntries) {
        this.counters.pendingFifoFullStalls++;
        return;
      }
      this.held.shift();
      if (isRead) this.countHeld(-1);
      this.endpoint.release(tlp);
      this.rxFifo += tlp.count;
      if (this.rxFifo > this.counters.maxRxFifo) this.counters.maxRxFifo = this.rxFifo;
      if (isRead) {
        this.pendingReads.push(tlp);
        this.pendingReadCount += tlp.count;
        if (this.pendingReadCount > this.counters.maxPendingReads) this.counters.maxPendingReads = this.pendingReadCount;
      }
      this.rxDdr(tlp);
    }
  }

  /**
   * rx_ddr: one DDR access per request, in order; DDR transfers are serialized, latencies pipelined.
   * Each finishes at the DDR's busy-until (which never decreases) plus a fixed latency, so they finish
   * in the order they started: one preallocated callback serves the oldest.
   */
  private rxDdr(tlp: Tlp): void {
    const now = this.scheduler.now();
    const bytes = tlp.lengthDw * 4;
    const doneAt = this.ddrServer.serve(now, bytes) + this.ddrLatencyPs;
    this.counters.ddrBusyPs = this.ddrServer.busyPs;
    if (tlp.kind === 'MRd') this.counters.readQueuedPs += this.ddrServer.lastWaitPs;
    this.scheduler.schedule(doneAt - now, this.ddrDone);
    this.inDdr.push(tlp);
  }

  private readonly ddrDone = (): void => {
    const tlp = this.inDdr.shift()!;
    const bytes = spanBytes(tlp);
    const offset = tlp.address - this.config.barAddress(0);
    if (tlp.kind === 'MWr') {
      this.ddr.write(offset, tlp.data!);
      this.counters.writeRequests += tlp.count;
      this.counters.bytesWritten += tlp.data!.length;
    } else {
      this.txDdr(tlp, this.ddr.read(offset, bytes));
    }
    this.rxFifo -= tlp.count;
    this.admit();
  };

  /** tx_ddr: the head of pending_read_fifo describes the completions for the data DDR returned. */
  private txDdr(tlp: Tlp, data: Uint8Array): void {
    const head = this.pendingReads.shift();
    if (head !== tlp) throw new Error(`${this.name}: DDR returned data out of order`);
    this.pendingReadCount -= tlp.count;
    this.counters.readRequests += tlp.count;
    this.counters.bytesRead += data.length;
    this.counters.completions += this.endpoint.sendReadData(tlp, data, this.params.mpsBytes, READ_COMPLETION_BOUNDARY);
  }

  /**
   * Burst granularity: the Fig. 4 FIFOs served in closed form, constituent by constituent, as per-TLP
   * serves them: each request leaves the PCIe core's buffer (its credits return) when it has arrived,
   * the requests before it have left, and an rx_request_fifo entry (and, for a read,
   * a pending_read_fifo entry) is free: the entry taken `depth` requests earlier frees when DDR has
   * served that request. DDR serves each from when it was admitted. A write's bytes go into DDR now
   * (no event); a read's data is taken now (in order, as per-TLP's rx_ddr, so every read sees the
   * writes before it and none after) and its completions are built at one event, when DDR has
   * returned the last request's data, each request's ready when DDR returned it. The credits of the
   * constituents that have left go back at once, the rest at one event when the last one leaves.
   */
  private admitTimed(tlp: Tlp): void {
    const p = this.params;
    const now = this.scheduler.now();
    const n = tlp.count;
    const ready = tlp.readyPs;
    const reads = tlp.reads;
    const isRead = tlp.kind === 'MRd';
    const left = new Float64Array(n);
    const donePs = isRead ? new Float64Array(n) : null;
    const c = this.counters;
    let prev = this.lastLeftPs;
    for (let i = 0; i < n; i++) {
      const arrived = ready ? ready[i] : now;
      let t = arrived > prev ? arrived : prev;
      if (this.rxDonePs.length >= p.rxRequestFifoEntries) {
        const free = this.rxDonePs.shift();
        if (free > t) {
          t = free;
          c.rxFifoFullStalls++;
        }
      }
      if (isRead && this.readDonePs.length >= p.pendingReadFifoEntries) {
        const free = this.readDonePs.shift();
        if (free > t) {
          t = free;
          c.pendingFifoFullStalls++;
        }
      }
      left[i] = prev = t;
      const inRx = pending(this.rxDonePs, t) + 1;
      if (inRx > c.maxRxFifo) c.maxRxFifo = inRx;
      if (isRead) {
        const inPending = pending(this.readDonePs, t) + 1;
        if (inPending > c.maxPendingReads) c.maxPendingReads = inPending;
      }
      const bytes = isRead ? (reads ? reads.lens[i] : tlp.lengthDw * 4) : partBytes(tlp, i);
      const done = this.ddrServer.serve(t, bytes) + this.ddrLatencyPs;
      this.rxDonePs.push(done);
      if (donePs) {
        donePs[i] = done;
        this.readDonePs.push(done);
        c.readQueuedPs += t - arrived + this.ddrServer.lastWaitPs;
      }
    }
    this.lastLeftPs = prev;
    c.ddrBusyPs = this.ddrServer.busyPs;
    // Credits first: per-TLP's core returns them as each request leaves, before DDR has its data.
    if (prev <= now) this.endpoint.release(tlp, left);
    else {
      // Those that have left return their credits now, the rest when the last of them leaves.
      let k = 0;
      while (left[k] <= now) k++;
      if (k > 0) this.endpoint.release(sliceBurst(tlp, 0, k), left.subarray(0, k));
      this.leaving.push(k > 0 ? sliceBurst(tlp, k, n) : tlp);
      this.leavingPs.push(k > 0 ? left.subarray(k) : left);
      this.scheduler.schedule(prev - now, this.leave);
    }
    const offset = tlp.address - this.config.barAddress(0);
    if (isRead) {
      // The data as DDR returns it (every write before it, none after), the completions when it has:
      // built earlier, they would hold the link ahead of what is sent meanwhile (its UpdateFCs).
      const data = this.ddr.read(offset, spanBytes(tlp));
      this.reading.push(tlp);
      this.readingData.push(data);
      this.readingDonePs.push(donePs!);
      const last = donePs![n - 1];
      this.scheduler.schedule(last > now ? last - now : 0, this.readReturned);
    } else {
      this.ddr.write(offset, tlp.data!);
      c.writeRequests += n;
      c.bytesWritten += tlp.data!.length;
    }
  }

  /** Burst granularity: DDR returned the oldest read's data (admitTimed): tx_ddr builds its completions. */
  private readonly readReturned = (): void => {
    const tlp = this.reading.shift()!;
    const data = this.readingData.shift()!;
    const c = this.counters;
    c.readRequests += tlp.count;
    c.bytesRead += data.length;
    c.completions += this.endpoint.sendReadData(tlp, data, this.params.mpsBytes, READ_COMPLETION_BOUNDARY, this.readingDonePs.shift()!);
  };

  /** Burst granularity: the oldest request still in the PCIe core's buffer has left it (admitTimed): its credits return. */
  private readonly leave = (): void => {
    this.endpoint.release(this.leaving.shift()!, this.leavingPs.shift()!);
  };

  /** Trace only: a read request entered (+1) or left (-1) the PCIe core's buffer. */
  private countHeld(d: number): void {
    this.readsHeldCount += d;
    this.readsHeld.set(this.readsHeldCount);
  }
}

/** How many of a FIFO's entries (their DDR finish times, oldest first, nondecreasing) are still taken at `t`. */
function pending(donePs: NumberRing, t: number): number {
  let lo = 0;
  let hi = donePs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (donePs.at(mid) <= t) lo = mid + 1;
    else hi = mid;
  }
  return donePs.length - lo;
}
