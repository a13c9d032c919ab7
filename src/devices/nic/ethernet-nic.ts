import { labelCallback, type StateDigest } from '../../core/digest.js';
import { Ring } from '../../core/ring.js';
import type { Scheduler } from '../../core/scheduler.js';
import { prefixKeys, type TraceRegistry } from '../../core/trace.js';
import type { PciePort } from '../../pcie/link.js';
import type { DmaEngine, DmaParams, DmaSegment } from '../dma-engine.js';
import { macAt, type NetPort, type NetReceiver } from '../net-port.js';
import { dwordAt, dwords, PcieEndpoint, type EndpointDevice } from '../pcie-endpoint.js';
import {
  CTRL_RST,
  decodeRxRead,
  decodeSrrctl,
  decodeTxDesc,
  DESC_BYTES,
  encodeRxWriteBack,
  encodeTxDesc,
  ICR,
  MAX_FRAME_BYTES,
  MIN_FRAME_BYTES,
  NIC_BAR0_BYTES,
  NIC_CLASS,
  NIC_DEVICE,
  NIC_REG,
  NIC_VENDOR,
  RCTL_EN,
  RX_ERR,
  RX_STATUS,
  STATUS_LU,
  TCTL_EN,
  TX_CMD,
  TX_STATUS,
  type RxReadDescriptor,
  type TxDescriptor,
} from './nic-defs.js';

export interface NicParams extends DmaParams {
  /** On-chip transmit packet buffer, bytes: frames being read from memory or waiting for the wire (82574: 20 KiB of 40). */
  txFifoBytes: number;
  /** On-chip receive packet buffer, bytes: frames waiting for a descriptor and their DMA writes; a frame that does not fit is missed. */
  rxFifoBytes: number;
  /** Descriptors fetched per descriptor read, at most (a prefetch burst: one MRd of 16 B each). */
  descFetchEntries: number;
  /** Receive descriptors held on chip, fetched ahead of frames. */
  rxDescCacheEntries: number;
}

interface TxPacket {
  /** Ring index of its first descriptor and how many it spans. */
  first: number;
  descs: TxDescriptor[];
  bytes: number;
  data: Uint8Array | null;
  /** Reads still out; the packet leaves when it has its data and every packet before it has left. */
  ready: boolean;
  bad: boolean;
}

interface RxDesc {
  index: number;
  desc: RxReadDescriptor;
}

/**
 * An Ethernet controller in a box slot: transmit and receive descriptor rings in host memory (any bus
 * address, in fact), doorbells (tail registers), descriptor prefetch, bus-master DMA of frames, write-back
 * of descriptors with a done bit, MSI with interrupt throttling, and its own Ethernet port onto a
 * network outside the box. Receive buffers may be split: the first HSPLIT bytes of a frame to a header
 * buffer, the rest to a packet buffer (82599 header split), so payloads can go to a DC buffer while
 * protocol headers go to host memory.
 */
export class EthernetNic implements EndpointDevice, NetReceiver {
  readonly endpoint: PcieEndpoint;
  private readonly dma: DmaEngine;
  private ctrl = 0;
  private icr = 0;
  private ims = 0;
  private itr = 0;
  private rctl = 0;
  private tctl = 0;
  private rdba = 0;
  private rdlen = 0;
  private rdh = 0;
  private rdt = 0;
  private srrctl = 0;
  private hsplit = 0;
  private tdba = 0;
  private tdlen = 0;
  private tdh = 0;
  private tdt = 0;
  /** Next transmit descriptor to fetch, and whether a fetch is out (one at a time, as each is a burst). */
  private txFetchAt = 0;
  private txFetching = false;
  /** A descriptor fetch failed: the ring stops at the descriptor it could not read until software sets the head again (TDH) or resets. */
  private txRingError = false;
  /** Fetched transmit descriptors not yet in a packet (at most one burst ahead of the packet builder). */
  private readonly txDescs = new Ring<{ index: number; desc: TxDescriptor }>();
  /** Packets in the transmit FIFO, in ring order (bounded by txFifoBytes). */
  private readonly txPackets = new Ring<TxPacket>();
  private txFifoUsed = 0;
  /** A packet waits for room in the transmit FIFO (so a stall is counted once). */
  private txStalled = false;
  private netBlocked = false;
  private rxFetchAt = 0;
  private rxFetching = false;
  private rxRingError = false;
  /** Fetched receive descriptors (bounded by rxDescCacheEntries). */
  private readonly rxDescs = new Ring<RxDesc>();
  /** Frames in the receive FIFO (bounded by rxFifoBytes). */
  private readonly rxFrames = new Ring<Uint8Array>();
  private rxFifoUsed = 0;
  /** Interrupt throttling: no MSI before this time; a cause raised earlier waits for the timer. */
  private nextMsiPs = 0;
  private msiTimer = false;
  readonly counters = {
    txFrames: 0,
    txBytes: 0,
    rxFrames: 0,
    rxBytes: 0,
    /** Frames dropped because the receive FIFO was full (MPC), or arrived with the receiver disabled. */
    rxMissed: 0,
    /** Descriptors refused: zero length, a frame over 1514 B, buffers too small for a frame (RXE), an unreadable buffer. */
    badDescriptors: 0,
    /** Descriptor or buffer DMA that completed with an error status. */
    dmaErrors: 0,
    descriptorFetches: 0,
    interrupts: 0,
    txFifoFullStalls: 0,
    unsupportedRequests: 0,
    writesOutsideBar: 0,
  };
  /** Missed/good counters as software reads them (read to clear). */
  private mpc = 0;
  private gprc = 0;
  private gptc = 0;

  constructor(
    readonly name: string,
    private readonly scheduler: Scheduler,
    readonly params: NicParams,
    port: PciePort,
    private readonly net: NetPort,
    /** Its station address (RAL0/RAH0), given by the builder. */
    readonly mac: number,
    link: { generation: number; lanes: number },
    trace?: TraceRegistry,
  ) {
    this.endpoint = new PcieEndpoint(name, scheduler, port, {
      identity: { vendorId: NIC_VENDOR, deviceId: NIC_DEVICE, classCode: NIC_CLASS, bars: [{ sizeBytes: NIC_BAR0_BYTES }], msi: true },
      link,
      dma: params,
      counters: this.counters,
    });
    this.dma = this.endpoint.dma!;
    this.endpoint.attach(this);
    net.attach(this);
    trace?.register(`nic.${name}`, () => ({ ...this.counters, ...prefixKeys('dma', this.dma.snapshot()) }));
  }

  get config() {
    return this.endpoint.config;
  }

  private get txEntries(): number {
    return Math.floor(this.tdlen / DESC_BYTES);
  }

  private get rxEntries(): number {
    return Math.floor(this.rdlen / DESC_BYTES);
  }

  // ---- Registers ------------------------------------------------------------------------------

  regRead(_bar: number, offset: number, lengthBytes: number): Uint8Array {
    return dwords(offset, lengthBytes, (off) => this.reg(off));
  }

  private reg(off: number): number {
    switch (off) {
      case NIC_REG.CTRL:
        return this.ctrl;
      case NIC_REG.STATUS:
        return STATUS_LU;
      case NIC_REG.ICR: {
        const v = this.icr;
        this.icr = 0;
        return v;
      }
      case NIC_REG.ITR:
        return this.itr;
      case NIC_REG.IMS:
        return this.ims;
      case NIC_REG.RCTL:
        return this.rctl;
      case NIC_REG.TCTL:
        return this.tctl;
      case NIC_REG.RDBAL:
        return this.rdba % 2 ** 32;
      case NIC_REG.RDBAH:
        return Math.floor(this.rdba / 2 ** 32);
      case NIC_REG.RDLEN:
        return this.rdlen;
      case NIC_REG.RDH:
        return this.rdh;
      case NIC_REG.RDT:
        return this.rdt;
      case NIC_REG.SRRCTL:
        return this.srrctl;
      case NIC_REG.HSPLIT:
        return this.hsplit;
      case NIC_REG.TDBAL:
        return this.tdba % 2 ** 32;
      case NIC_REG.TDBAH:
        return Math.floor(this.tdba / 2 ** 32);
      case NIC_REG.TDLEN:
        return this.tdlen;
      case NIC_REG.TDH:
        return this.tdh;
      case NIC_REG.TDT:
        return this.tdt;
      case NIC_REG.PBA:
        return ((Math.floor(this.params.txFifoBytes / 1024) << 16) | Math.floor(this.params.rxFifoBytes / 1024)) >>> 0;
      case NIC_REG.RAL0:
        return this.mac % 2 ** 32;
      case NIC_REG.RAH0:
        return (Math.floor(this.mac / 2 ** 32) | 0x8000_0000) >>> 0;
      case NIC_REG.MPC: {
        const v = this.mpc;
        this.mpc = 0;
        return v;
      }
      case NIC_REG.GPRC: {
        const v = this.gprc;
        this.gprc = 0;
        return v;
      }
      case NIC_REG.GPTC: {
        const v = this.gptc;
        this.gptc = 0;
        return v;
      }
      default:
        return 0;
    }
  }

  /** Register writes record state; ring work runs as its own event (as QEMU's e1000 does). */
  regWrite(_bar: number, offset: number, data: Uint8Array): void {
    for (let i = 0; i + 4 <= data.length; i += 4) this.setReg(offset + i, dwordAt(data, i));
  }

  private setReg(off: number, v: number): void {
    switch (off) {
      case NIC_REG.CTRL:
        if (v & CTRL_RST) return this.reset();
        this.ctrl = v;
        return;
      case NIC_REG.ICR:
        this.icr &= ~v; // write 1 to clear
        return;
      case NIC_REG.ITR:
        this.itr = v & 0xffff;
        return;
      case NIC_REG.IMS:
        this.ims |= v;
        return this.interruptIfDue();
      case NIC_REG.IMC:
        this.ims &= ~v;
        return;
      case NIC_REG.RCTL:
        this.rctl = v;
        return this.kick('rx');
      case NIC_REG.TCTL:
        this.tctl = v;
        return this.kick('tx');
      case NIC_REG.RDBAL:
        this.rdba = Math.floor(this.rdba / 2 ** 32) * 2 ** 32 + ((v & ~0xf) >>> 0);
        return;
      case NIC_REG.RDBAH:
        this.rdba = (this.rdba % 2 ** 32) + v * 2 ** 32;
        return;
      case NIC_REG.RDLEN:
        this.rdlen = v & 0xfff80;
        return;
      case NIC_REG.RDH:
        this.rdh = this.rxFetchAt = v % Math.max(1, this.rxEntries);
        this.rxRingError = false;
        return;
      case NIC_REG.RDT:
        if (v < this.rxEntries) this.rdt = v;
        return this.kick('rx');
      case NIC_REG.SRRCTL:
        this.srrctl = v;
        return;
      case NIC_REG.HSPLIT:
        this.hsplit = v & 0x3ff;
        return;
      case NIC_REG.TDBAL:
        this.tdba = Math.floor(this.tdba / 2 ** 32) * 2 ** 32 + ((v & ~0xf) >>> 0);
        return;
      case NIC_REG.TDBAH:
        this.tdba = (this.tdba % 2 ** 32) + v * 2 ** 32;
        return;
      case NIC_REG.TDLEN:
        this.tdlen = v & 0xfff80;
        return;
      case NIC_REG.TDH:
        this.tdh = this.txFetchAt = v % Math.max(1, this.txEntries);
        this.txRingError = false;
        return;
      case NIC_REG.TDT:
        if (v < this.txEntries) this.tdt = v;
        return this.kick('tx');
    }
  }

  /**
   * Software reset, for bring-up: rings off, registers cleared, fetched descriptors dropped. Packets
   * already in the FIFOs and DMA in flight are not cancelled (a driver resets before it starts the rings).
   */
  private reset(): void {
    this.ctrl = this.icr = this.ims = this.itr = this.rctl = this.tctl = 0;
    this.rdba = this.rdlen = this.rdh = this.rdt = this.rxFetchAt = 0;
    this.tdba = this.tdlen = this.tdh = this.tdt = this.txFetchAt = 0;
    this.srrctl = this.hsplit = 0;
    this.txRingError = this.rxRingError = false;
    while (this.rxDescs.length > 0) this.rxDescs.shift();
    while (this.txDescs.length > 0) this.txDescs.shift();
  }

  private readonly txKick = labelCallback(() => this.txWork(), 'nic>tx');
  private readonly rxKick = labelCallback(() => this.rxWork(), 'nic>rx');

  private kick(dir: 'tx' | 'rx'): void {
    this.scheduler.schedule(0, dir === 'tx' ? this.txKick : this.rxKick);
  }

  // ---- Transmit -------------------------------------------------------------------------------

  private txWork(): void {
    if (!(this.tctl & TCTL_EN) || this.txEntries === 0) return;
    this.buildPackets();
    this.fetchTx();
  }

  /**
   * Fetches a burst of descriptors from txFetchAt toward TDT (contiguous in the ring): while fewer than
   * a burst wait, or while those waiting hold no packet's end (a packet may span more than a burst).
   */
  private fetchTx(): void {
    if (this.txFetching || this.txRingError || this.txFetchAt === this.tdt || (this.txDescs.length >= this.params.descFetchEntries && this.txEopFetched())) return;
    const n = Math.min(this.params.descFetchEntries, (this.tdt > this.txFetchAt ? this.tdt : this.txEntries) - this.txFetchAt);
    const first = this.txFetchAt;
    this.txFetchAt = (first + n) % this.txEntries;
    this.txFetching = true;
    this.counters.descriptorFetches++;
    this.dma.read(
      [{ address: this.tdba + first * DESC_BYTES, lengthBytes: n * DESC_BYTES }],
      labelCallback((d: Uint8Array | null) => {
        this.txFetching = false;
        if (!d) {
          // The ring is unreadable: nothing more is fetched from it (the failed descriptors are not skipped) until software sets it up again.
          this.txFetchAt = first;
          this.txRingError = true;
          this.counters.dmaErrors++;
          this.raise(ICR.DESC_ERR);
          return;
        }
        for (let i = 0; i < n; i++) this.txDescs.push({ index: (first + i) % this.txEntries, desc: decodeTxDesc(d.subarray(i * DESC_BYTES, (i + 1) * DESC_BYTES)) });
        this.buildPackets();
        this.fetchTx();
      }, `${this.name}>tx-fetched:${n}`),
    );
  }

  private txEopFetched(): boolean {
    for (let i = 0; i < this.txDescs.length; i++) if (this.txDescs.at(i)!.desc.cmd & TX_CMD.EOP) return true;
    return false;
  }

  /** Groups fetched descriptors into packets (up to EOP) and reads each packet's buffers while the FIFO has room. */
  private buildPackets(): void {
    for (;;) {
      let eop = -1;
      let bytes = 0;
      for (let i = 0; i < this.txDescs.length; i++) {
        const d = this.txDescs.at(i)!.desc;
        bytes += d.lengthBytes;
        if (d.cmd & TX_CMD.EOP) {
          eop = i;
          break;
        }
      }
      if (eop < 0) return; // the packet's end is not fetched yet
      const bad = bytes < MIN_FRAME_BYTES || bytes > MAX_FRAME_BYTES;
      if (!bad && this.txFifoUsed + bytes > this.params.txFifoBytes) {
        // Counted once per stall: the builder is called again on every frame sent while it waits.
        if (!this.txStalled) this.counters.txFifoFullStalls++;
        this.txStalled = true;
        return;
      }
      this.txStalled = false;
      const parts = [];
      for (let i = 0; i <= eop; i++) parts.push(this.txDescs.shift()!);
      const pkt: TxPacket = { first: parts[0].index, descs: parts.map((p) => p.desc), bytes, data: null, ready: bad, bad };
      this.txPackets.push(pkt);
      if (bad) {
        this.counters.badDescriptors++;
      } else {
        this.txFifoUsed += bytes;
        const segs = pkt.descs.filter((d) => d.lengthBytes > 0).map((d) => ({ address: d.address, lengthBytes: d.lengthBytes }));
        const label = `${this.name}>tx-read:${bytes}`;
        readBytes(
          this.dma,
          segs,
          labelCallback((data: Uint8Array | null) => {
            pkt.ready = true;
            if (data) pkt.data = data;
            else {
              pkt.bad = true;
              this.txFifoUsed -= bytes; // it will not be sent: its room in the FIFO is free again
              this.counters.dmaErrors++;
              this.counters.badDescriptors++;
            }
            this.sendPackets();
          }, label),
          label,
        );
      }
      this.sendPackets();
      this.fetchTx();
    }
  }

  /** Sends the FIFO's packets in ring order as their data arrives; writes back their descriptors. */
  private sendPackets(): void {
    while (this.txPackets.length > 0 && !this.netBlocked) {
      const pkt = this.txPackets.peek()!;
      if (!pkt.ready) return;
      if (!pkt.bad) {
        if (!this.net.send(pkt.data!)) {
          this.netBlocked = true;
          return;
        }
        this.counters.txFrames++;
        this.counters.txBytes += pkt.bytes;
        this.gptc++;
        this.txFifoUsed -= pkt.bytes;
      }
      this.txPackets.shift();
      this.writeBackTx(pkt);
    }
    this.buildPackets();
  }

  private writeBackTx(pkt: TxPacket): void {
    const n = pkt.descs.length;
    const status = TX_STATUS.DD | (pkt.bad ? TX_STATUS.BAD : 0);
    let report = pkt.bad;
    pkt.descs.forEach((d, i) => {
      // Report Status: software asked to see this descriptor done (a refused one is always reported).
      if (d.cmd & TX_CMD.RS || pkt.bad) {
        report = true;
        this.dma.write(this.tdba + ((pkt.first + i) % this.txEntries) * DESC_BYTES, encodeTxDesc({ ...d, status }));
      }
    });
    this.tdh = (pkt.first + n) % this.txEntries;
    if (report) this.raise(pkt.bad ? ICR.TXDW | ICR.DESC_ERR : ICR.TXDW);
  }

  netReady(): void {
    if (!this.netBlocked) return;
    this.netBlocked = false;
    this.sendPackets();
  }

  // ---- Receive --------------------------------------------------------------------------------

  netReceive(frame: Uint8Array): void {
    // The destination filter (RAL0/RAH0; no promiscuous mode): another station's unicast frame, flooded
    // here by a switch that has not learnt that station yet, is not the NIC's.
    if ((frame[0] & 1) === 0 && macAt(frame, 0) !== this.mac) return;
    if (!(this.rctl & RCTL_EN) || this.rxFifoUsed + frame.length > this.params.rxFifoBytes) {
      this.counters.rxMissed++;
      this.mpc++;
      this.raise(ICR.RXO);
      return;
    }
    this.rxFifoUsed += frame.length;
    this.rxFrames.push(frame);
    this.rxWork();
  }

  private rxWork(): void {
    if (!(this.rctl & RCTL_EN) || this.rxEntries === 0) return;
    this.placeFrames();
    this.fetchRx();
  }

  private fetchRx(): void {
    const room = this.params.rxDescCacheEntries - this.rxDescs.length;
    if (this.rxFetching || this.rxRingError || this.rxFetchAt === this.rdt || room <= 0) return;
    const n = Math.min(this.params.descFetchEntries, room, (this.rdt > this.rxFetchAt ? this.rdt : this.rxEntries) - this.rxFetchAt);
    const first = this.rxFetchAt;
    this.rxFetchAt = (first + n) % this.rxEntries;
    this.rxFetching = true;
    this.counters.descriptorFetches++;
    this.dma.read(
      [{ address: this.rdba + first * DESC_BYTES, lengthBytes: n * DESC_BYTES }],
      labelCallback((d: Uint8Array | null) => {
        this.rxFetching = false;
        if (!d) {
          this.rxFetchAt = first;
          this.rxRingError = true;
          this.counters.dmaErrors++;
          this.raise(ICR.DESC_ERR);
          return;
        }
        for (let i = 0; i < n; i++) this.rxDescs.push({ index: (first + i) % this.rxEntries, desc: decodeRxRead(d.subarray(i * DESC_BYTES, (i + 1) * DESC_BYTES)) });
        this.placeFrames();
        this.fetchRx();
      }, `${this.name}>rx-fetched:${n}`),
    );
  }

  /**
   * Writes each waiting frame into the next descriptor's buffers (header part, then the rest), then the
   * descriptor's write-back: posted writes stay in order, so software that sees DD sees the data.
   */
  private placeFrames(): void {
    const { packetBufferBytes, headerBufferBytes } = decodeSrrctl(this.srrctl);
    while (this.rxFrames.length > 0 && this.rxDescs.length > 0) {
      const frame = this.rxFrames.shift()!;
      const { index, desc } = this.rxDescs.shift()!;
      const split = this.hsplit > 0 ? Math.min(this.hsplit, frame.length) : 0;
      const rest = frame.length - split;
      const wbAddress = this.rdba + index * DESC_BYTES;
      const release = labelCallback(() => {
        this.rxFifoUsed -= frame.length;
      }, `${this.name}>rx-placed:${frame.length}`);
      if (split > headerBufferBytes || rest > packetBufferBytes || (rest > 0 && !usableBuffer(desc.packetAddress)) || (split > 0 && !usableBuffer(desc.headerAddress))) {
        // The descriptor's buffers cannot hold the frame (too small, absent, not DW-aligned): it is dropped and the descriptor says so.
        this.counters.badDescriptors++;
        this.dma.write(wbAddress, encodeRxWriteBack({ headerBytes: 0, packetBytes: 0, status: RX_STATUS.DD | RX_STATUS.EOP, errors: RX_ERR.RXE }), release);
        this.raise(ICR.RXT0 | ICR.DESC_ERR);
      } else {
        // Whole DWs (the buffers are DW-aligned and their sizes multiples of 64 B: the padding stays inside them).
        if (split > 0) this.dma.write(desc.headerAddress, wholeDws(frame.subarray(0, split)));
        if (rest > 0) this.dma.write(desc.packetAddress, wholeDws(frame.subarray(split)));
        this.dma.write(wbAddress, encodeRxWriteBack({ headerBytes: split, packetBytes: rest, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 }), release);
        this.counters.rxFrames++;
        this.counters.rxBytes += frame.length;
        this.gprc++;
        this.raise(ICR.RXT0);
      }
      this.rdh = (index + 1) % this.rxEntries;
    }
    this.fetchRx();
  }

  // ---- Interrupts -----------------------------------------------------------------------------

  /** Sets causes; an MSI goes out now, or when the throttle interval since the last one ends. */
  private raise(cause: number): void {
    this.icr |= cause;
    this.interruptIfDue();
  }

  private interruptIfDue(): void {
    if ((this.icr & this.ims) === 0 || this.msiTimer) return;
    const now = this.scheduler.now();
    if (now < this.nextMsiPs) {
      this.msiTimer = true;
      this.scheduler.schedule(this.nextMsiPs - now, this.msiDue);
      return;
    }
    this.signal();
  }

  private readonly msiDue = labelCallback(() => {
    this.msiTimer = false;
    if ((this.icr & this.ims) !== 0) this.signal();
  }, 'nic>msi-timer');

  private signal(): void {
    // Without MSI enabled nothing is signalled, and the causes stay set for software to read.
    if (!this.endpoint.msi()) return;
    this.counters.interrupts++;
    // With MSI the cause is acknowledged by the message itself (e1000e auto-clears on MSI): software reads the rings.
    this.icr &= ~(ICR.TXDW | ICR.RXT0);
    this.nextMsiPs = this.scheduler.now() + this.itr * 256_000;
  }

  portReady(): void {
    // The DMA engine was pumped by the core; nothing of the NIC's own waits on the PCIe link.
  }

  /** Register state that decides what comes next, the rings' positions, FIFOs and the DMA engine. */
  digest(d: StateDigest): void {
    d.section(this.name);
    for (const v of [this.icr, this.ims, this.rdh, this.rdt, this.rxFetchAt, this.tdh, this.tdt, this.txFetchAt, this.txFifoUsed, this.rxFifoUsed]) d.num(v);
    d.until(this.nextMsiPs);
    d.flag(this.txFetching);
    d.flag(this.rxFetching);
    d.flag(this.txRingError);
    d.flag(this.rxRingError);
    d.flag(this.netBlocked);
    d.flag(this.msiTimer);
    d.num(this.txDescs.length);
    d.num(this.txPackets.length);
    d.num(this.rxDescs.length);
    d.num(this.rxFrames.length);
    this.endpoint.digestTx(d);
    this.dma.digest(d);
  }
}

/**
 * The model's TLPs carry whole DWs at DW-aligned addresses (no byte enables; the codec refuses anything
 * else, and a completer returns lengthDw x 4 bytes). A read of any bytes therefore reads the DWs they
 * touch and cuts the bytes out, as a device's DMA engine does with byte enables.
 */
function readBytes(dma: DmaEngine, segs: DmaSegment[], cb: (data: Uint8Array | null) => void, label: string): void {
  if (segs.every((s) => s.address % 4 === 0 && s.lengthBytes % 4 === 0)) return dma.read(segs, cb);
  const covers = segs.map((s) => {
    const address = s.address - (s.address % 4);
    return { address, lengthBytes: Math.ceil((s.address + s.lengthBytes - address) / 4) * 4 };
  });
  dma.read(covers, labelCallback((d: Uint8Array | null) => {
    if (!d) return cb(null);
    let total = 0;
    for (const s of segs) total += s.lengthBytes;
    const out = new Uint8Array(total);
    let from = 0;
    let to = 0;
    segs.forEach((s, i) => {
      const skip = s.address % 4;
      out.set(d.subarray(from + skip, from + skip + s.lengthBytes), to);
      from += covers[i].lengthBytes;
      to += s.lengthBytes;
    });
    cb(out);
  }, label));
}

/** `b` padded with zeros to whole DWs (a write's last DW; its buffer has room for it). */
function wholeDws(b: Uint8Array): Uint8Array {
  if (b.length % 4 === 0) return b;
  const out = new Uint8Array(b.length + 4 - (b.length % 4));
  out.set(b);
  return out;
}

/** A receive buffer address the NIC can write: present (not 0) and DW-aligned. */
function usableBuffer(address: number): boolean {
  return address !== 0 && address % 4 === 0;
}

