import { labelCallback, type StateDigest } from '../core/digest.js';
import type { Scheduler } from '../core/scheduler.js';
import type { RootComplex } from '../devices/root-complex.js';
import {
  CTRL_RST,
  decodeRxWriteBack,
  DESC_BYTES,
  encodeRxRead,
  encodeSrrctl,
  encodeTxDesc,
  ICR,
  NIC_REG,
  RCTL_EN,
  RX_STATUS,
  TCTL_EN,
  TX_CMD,
  TX_STATUS,
  type RxWriteBack,
} from '../devices/nic/nic-defs.js';
import { call, type Seq } from './coroutine.js';
import type { HostMemoryAllocator } from './host-memory-allocator.js';
import { enableMsi } from './pci-msi.js';

export interface NicDriverParams {
  /** Descriptors per ring (transmit and receive each; a multiple of 8, so a ring is a multiple of 128 B). */
  ringEntries: number;
  /** Receive packet buffer per descriptor, bytes (SRRCTL.BSIZEPKT: whole KiB). */
  rxPacketBufferBytes: number;
  /** Bytes of each received frame the NIC splits off into the host's header buffer (0: no split). */
  headerSplitBytes: number;
  /** Minimum interval between the NIC's interrupts, ns (ITR, in 256 ns units). */
  interruptIntervalNs: number;
  /** CPU time from posting descriptors to the doorbell write, ns (the driver's submit path). */
  submitCpuNs: number;
}

/** Header buffer per descriptor: the 64 B SRRCTL.BSIZEHDR unit, in host memory. */
export const HEADER_BUFFER_BYTES = 64;

export interface Segment {
  address: number;
  lengthBytes: number;
}

export interface Received {
  /** The frame's first bytes, as the NIC split them into the host's header buffer. */
  header: Uint8Array;
  packetBytes: number;
  /** Write-back errors (RX_ERR): non-zero when the frame was refused. */
  errors: number;
}

interface TxFrame {
  /** Ring index of its last descriptor (the one with EOP and RS: its DD says the frame is done). */
  eop: number;
  descs: number;
  done: (ok: boolean) => void;
}

/**
 * The host's driver for the NIC (devices/nic/): bring-up (MSI, reset, rings, header split, throttling),
 * transmit of frames made of a header the driver copies into its own header buffer and a payload
 * anywhere on the bus (host memory, a DC buffer), posting receive buffers, and the interrupt handler
 * that reaps descriptors the NIC wrote back. Doorbells (tail writes) are coalesced: one per submit path.
 */
export class NicDriver {
  private txBase = 0;
  private rxBase = 0;
  private txHeaders = 0;
  private rxHeaders = 0;
  private txTail = 0;
  private txFreeDescs = 0;
  /** Frames posted and not yet done, in ring order (bounded by the ring). */
  private readonly txFrames: TxFrame[] = [];
  private rxTail = 0;
  private rxNext = 0;
  /** Receive callbacks by ring index (null: no buffer posted there). */
  private rxWaiting: (((r: Received) => void) | null)[] = [];
  private rxPosted = 0;
  private readonly txDoorbell = this.doorbell(NIC_REG.TDT, () => this.txTail, 'nic-drv>tdt');
  private readonly rxDoorbell = this.doorbell(NIC_REG.RDT, () => this.rxTail, 'nic-drv>rdt');
  mac = 0;
  /** The NIC's receive packet buffer, bytes (PBA): frames it can hold while it places earlier ones. */
  rxBufferBytes = 0;
  /** Called after each interrupt's reaping: callers post more work then. */
  onInterrupt: (() => void) | null = null;
  readonly counters = { txFrames: 0, rxFrames: 0, txErrors: 0, rxErrors: 0, interrupts: 0, doorbells: 0 };

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rc: RootComplex,
    private readonly alloc: HostMemoryAllocator,
    readonly deviceId: number,
    readonly bar0: number,
    readonly vector: number,
    readonly params: NicDriverParams,
  ) {}

  /** Brings the NIC up; returns its MAC address. */
  *init(): Seq<number> {
    const p = this.params;
    if (p.ringEntries % 8 !== 0 || p.ringEntries < 8) throw new Error(`NIC ring of ${p.ringEntries} entries: must be a multiple of 8, at least 8`);
    yield* enableMsi(this.rc, this.deviceId, this.vector, () => this.interrupt(), 'NIC');
    this.mmio(NIC_REG.CTRL, CTRL_RST);
    const ring = p.ringEntries * DESC_BYTES;
    this.txBase = this.alloc.alloc(ring);
    this.rxBase = this.alloc.alloc(ring);
    this.txHeaders = this.alloc.alloc(p.ringEntries * HEADER_BUFFER_BYTES);
    this.rxHeaders = this.alloc.alloc(p.ringEntries * HEADER_BUFFER_BYTES);
    this.rxWaiting = new Array(p.ringEntries).fill(null);
    this.txFreeDescs = p.ringEntries - 1; // one stays empty: head == tail means empty
    for (const [lo, hi, len, head, tail, base] of [
      [NIC_REG.TDBAL, NIC_REG.TDBAH, NIC_REG.TDLEN, NIC_REG.TDH, NIC_REG.TDT, this.txBase],
      [NIC_REG.RDBAL, NIC_REG.RDBAH, NIC_REG.RDLEN, NIC_REG.RDH, NIC_REG.RDT, this.rxBase],
    ]) {
      this.mmio(lo, base % 2 ** 32);
      this.mmio(hi, Math.floor(base / 2 ** 32));
      this.mmio(len, ring);
      this.mmio(head, 0);
      this.mmio(tail, 0);
    }
    this.mmio(NIC_REG.SRRCTL, encodeSrrctl(p.rxPacketBufferBytes, HEADER_BUFFER_BYTES));
    this.mmio(NIC_REG.HSPLIT, p.headerSplitBytes);
    this.mmio(NIC_REG.ITR, Math.round(p.interruptIntervalNs / 256));
    this.mmio(NIC_REG.IMS, ICR.TXDW | ICR.RXT0 | ICR.RXO | ICR.DESC_ERR);
    this.mmio(NIC_REG.TCTL, TCTL_EN);
    this.mmio(NIC_REG.RCTL, RCTL_EN);
    this.rxBufferBytes = ((yield* call<number>((k) => this.rc.mmioRead32(this.bar0 + NIC_REG.PBA, k))) & 0xffff) * 1024;
    const lo = yield* call<number>((k) => this.rc.mmioRead32(this.bar0 + NIC_REG.RAL0, k));
    const hi = yield* call<number>((k) => this.rc.mmioRead32(this.bar0 + NIC_REG.RAH0, k));
    if (!(hi & 0x8000_0000)) throw new Error(`NIC at BAR 0x${this.bar0.toString(16)} has no valid station address`);
    this.mac = (hi & 0xffff) * 2 ** 32 + lo;
    return this.mac;
  }

  private mmio(reg: number, v: number): void {
    this.rc.mmioWrite32(this.bar0 + reg, v);
  }

  /** Descriptors free on the transmit ring (a frame takes one for its header and one for a payload). */
  txFree(): number {
    return this.txFreeDescs;
  }

  /** Receive descriptors that can still be posted. */
  rxFree(): number {
    return this.params.ringEntries - 1 - this.rxPosted;
  }

  /**
   * Queues a frame: `header` (at most 64 B, copied into the driver's header buffer of its descriptor)
   * followed by `payload` read by the NIC from any bus address. `done(ok)` from the interrupt that finds
   * it written back (ok false: the NIC refused a descriptor). The caller checks txFree() first.
   */
  transmit(header: Uint8Array, payload: Segment | null, done: (ok: boolean) => void): void {
    const n = payload ? 2 : 1;
    if (n > this.txFreeDescs) throw new Error(`NIC transmit ring full: the caller must check txFree() (${this.txFreeDescs} free)`);
    if (header.length > HEADER_BUFFER_BYTES) throw new Error(`frame header of ${header.length} B exceeds the ${HEADER_BUFFER_BYTES}-byte header buffer`);
    const entries = this.params.ringEntries;
    const hdrAddr = this.txHeaders + this.txTail * HEADER_BUFFER_BYTES;
    this.rc.memory.write(hdrAddr, header);
    const first = this.txTail;
    this.rc.memory.write(this.txBase + first * DESC_BYTES, encodeTxDesc({ address: hdrAddr, lengthBytes: header.length, cmd: payload ? 0 : TX_CMD.EOP | TX_CMD.RS, status: 0 }));
    let eop = first;
    if (payload) {
      eop = (first + 1) % entries;
      this.rc.memory.write(this.txBase + eop * DESC_BYTES, encodeTxDesc({ address: payload.address, lengthBytes: payload.lengthBytes, cmd: TX_CMD.EOP | TX_CMD.RS, status: 0 }));
    }
    this.txTail = (eop + 1) % entries;
    this.txFreeDescs -= n;
    this.txFrames.push({ eop, descs: n, done });
    this.txDoorbell.post();
  }

  /** Posts a receive buffer at `packetAddress` (any bus address); `cb` from the interrupt that finds a frame in it. */
  postReceive(packetAddress: number, cb: (r: Received) => void): void {
    if (this.rxFree() <= 0) throw new Error('NIC receive ring full: the caller must check rxFree()');
    const i = this.rxTail;
    this.rc.memory.write(this.rxBase + i * DESC_BYTES, encodeRxRead({ packetAddress, headerAddress: this.rxHeaders + i * HEADER_BUFFER_BYTES }));
    this.rxWaiting[i] = cb;
    this.rxPosted++;
    this.rxTail = (i + 1) % this.params.ringEntries;
    this.rxDoorbell.post();
  }

  /**
   * A ring's tail register, written once per submit path (submitCpuNs after the first post) with the
   * tail as it is then, however many descriptors were posted meanwhile.
   */
  private doorbell(reg: number, tail: () => number, label: string): { post(): void; pending(): boolean } {
    let pending = false;
    const ring = labelCallback(() => {
      pending = false;
      this.counters.doorbells++;
      this.mmio(reg, tail());
    }, label);
    return {
      post: () => {
        if (pending) return;
        pending = true;
        this.scheduler.schedule(this.params.submitCpuNs * 1000, ring);
      },
      pending: () => pending,
    };
  }

  /** MSI handler: reap written-back transmit and receive descriptors in ring order, then let callers post more. */
  private interrupt(): void {
    this.counters.interrupts++;
    const mem = this.rc.memory;
    while (this.txFrames.length > 0) {
      const f = this.txFrames[0];
      const status = mem.read(this.txBase + f.eop * DESC_BYTES + 12, 1)[0];
      if (!(status & TX_STATUS.DD)) break;
      this.txFrames.shift();
      this.txFreeDescs += f.descs;
      const ok = !(status & TX_STATUS.BAD);
      if (ok) this.counters.txFrames++;
      else this.counters.txErrors++;
      f.done(ok);
    }
    for (let guard = 0; guard < this.params.ringEntries; guard++) {
      const i = this.rxNext;
      const cb = this.rxWaiting[i];
      if (!cb) break;
      const wb: RxWriteBack = decodeRxWriteBack(mem.read(this.rxBase + i * DESC_BYTES, DESC_BYTES));
      if (!(wb.status & RX_STATUS.DD)) break;
      this.rxWaiting[i] = null;
      this.rxPosted--;
      this.rxNext = (i + 1) % this.params.ringEntries;
      if (wb.errors) this.counters.rxErrors++;
      else this.counters.rxFrames++;
      cb({ header: mem.read(this.rxHeaders + i * HEADER_BUFFER_BYTES, wb.headerBytes), packetBytes: wb.packetBytes, errors: wb.errors });
    }
    this.onInterrupt?.();
  }

  digest(d: StateDigest): void {
    d.section(`nic-driver${this.vector}`);
    for (const v of [this.txTail, this.txFreeDescs, this.txFrames.length, this.rxTail, this.rxNext, this.rxPosted]) d.num(v);
    d.flag(this.txDoorbell.pending());
    d.flag(this.rxDoorbell.pending());
  }
}
