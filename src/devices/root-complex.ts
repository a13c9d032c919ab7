import { completionBurst, constituent, spanBytes } from '../pcie/burst.js';
import type { StateDigest } from '../core/digest.js';
import { Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import { bridgeConfig, type ConfigSpace } from '../pcie/config-space.js';
import type { PciePort, TlpReceiver } from '../pcie/link.js';
import { bdf, bdfBus, CPL_STATUS, digestTlps, Tlp } from '../pcie/tlp.js';
import { SparseMemory } from './sparse-memory.js';

export interface RootComplexParams {
  /** Installed DRAM, bytes (the paper's host: 8 GB). */
  memoryBytes: number;
  /** Time from a device's memory read request arriving to its first completion leaving, ns. */
  memoryReadLatencyNs: number;
  /** Completion payload size for device reads of host memory, bytes (the read completion boundary). */
  readCompletionBytes: number;
  /** Time from an MSI write reaching the root complex to the driver's handler running, ns. */
  interruptLatencyNs: number;
}

/** x86 MSI address window (Intel SDM vol. 3, 10.11.1). */
export const MSI_ADDRESS_BASE = 0xfee0_0000;
const MSI_ADDRESS_END = 0xfef0_0000;
/** Physical address layout: DRAM below 3 GiB, the PCI hole 3-4 GiB, the rest of DRAM above 4 GiB. */
export const PCI_HOLE_BASE = 0xc000_0000;
const FOUR_GIB = 0x1_0000_0000;
/**
 * Bounded: what may wait for the link (`outQ`), CPU requests and read completions together: 4096 for
 * the CPU's MMIO/config requests, plus what the device reads seen so far can need. A requester has at
 * most 256 reads outstanding (the 8-bit tag field the model's devices use, `maxReadTags` <= 256) of at
 * most 4 KiB (the largest MRRS), each answered in at most ceil(4096 / readCompletionBytes) + 1
 * completions; so each requester that has read host memory adds 256 x that (at 1 KiB completions,
 * 1,280 TLPs). More than that waiting is a bug, not a load.
 */
const CPU_QUEUE_LIMIT = 4096;
const READ_TAGS_PER_REQUESTER = 256;

/**
 * The host's root complex: DRAM behind it, one root port (00:01.0) whose link goes to the
 * server-side ExpEther bridge, the MSI target, and the CPU's view of configuration and MMIO space.
 */
export class RootComplex implements TlpReceiver {
  readonly memory: SparseMemory;
  readonly rootPort: ConfigSpace;
  static readonly ROOT_PORT_ID = bdf(0, 1);
  private readonly requesterId = bdf(0, 0);
  private readonly pendingReads = new Map<number, { cb: (data: Uint8Array | null) => void; buf: Uint8Array; received: number }>();
  private nextTag = 0;
  private readonly outQ = new Ring<Tlp>();
  /** The requesters that have read host memory, for the outQ's bound (see CPU_QUEUE_LIMIT); at most one per PCIe function. */
  private readonly readRequesters = new Set<number>();
  /** Device reads waiting out the memory latency; a fixed latency keeps them in arrival order. */
  private readonly readsInService = new Ring<Tlp>();
  private readonly msiHandlers = new Map<number, () => void>();
  /** Prefix of this root complex's names in digests (the first host's: `rc`, as before there could be more). */
  private readonly label: string;
  readonly counters = { dmaWriteBytes: 0, dmaReadBytes: 0, interrupts: 0, unsupported: 0 };

  constructor(
    readonly scheduler: Scheduler,
    readonly params: RootComplexParams,
    readonly port: PciePort,
    link: { generation: number; lanes: number },
    trace?: TraceRegistry,
    /** The host's name: its counters are `<name>.rootComplex` (the first host's: `host.rootComplex`). */
    readonly hostName = 'host',
  ) {
    const above4G = Math.max(0, params.memoryBytes - PCI_HOLE_BASE);
    this.memory = new SparseMemory('host-memory', above4G > 0 ? FOUR_GIB + above4G : params.memoryBytes);
    this.rootPort = bridgeConfig({ vendorId: 0x8086, deviceId: 0x3408, portType: 'root', linkGen: link.generation, linkLanes: link.lanes });
    port.attach(this);
    trace?.register(`${hostName}.rootComplex`, () => this.counters);
    this.label = hostName === 'host' ? 'rc' : `${hostName}.rc`;
  }

  isDram(addr: number, len: number): boolean {
    const end = addr + len;
    if (end <= PCI_HOLE_BASE) return addr >= 0;
    return addr >= FOUR_GIB && end <= this.memory.sizeBytes;
  }

  // ---- CPU side: configuration, MMIO, interrupts ----------------------------------------------

  /** Configuration read as the CPU does it (ECAM); absent functions read all-ones. */
  configRead(id: number, register: number, cb: (value: number) => void): void {
    const bus = bdfBus(id);
    if (bus === 0) {
      cb(id === RootComplex.ROOT_PORT_ID ? this.rootPort.read32(register) : 0xffffffff);
      return;
    }
    const kind = this.configKind(bus, false);
    if (!kind || (kind === 'CfgRd0' && ((id >>> 3) & 0x1f) !== 0)) {
      cb(0xffffffff);
      return;
    }
    this.request(Tlp.config(kind as 'CfgRd0' | 'CfgRd1', this.requesterId, 0, id, register, null), 4, (d) => cb(d ? (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0 : 0xffffffff));
  }

  configWrite(id: number, register: number, value: number, cb: () => void): void {
    const bus = bdfBus(id);
    if (bus === 0) {
      if (id === RootComplex.ROOT_PORT_ID) this.rootPort.write32(register, value);
      cb();
      return;
    }
    const kind = this.configKind(bus, true);
    if (!kind || (kind === 'CfgWr0' && ((id >>> 3) & 0x1f) !== 0)) {
      cb();
      return;
    }
    const data = new Uint8Array([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24]);
    this.request(Tlp.config(kind as 'CfgWr0' | 'CfgWr1', this.requesterId, 0, id, register, data), 0, () => cb());
  }

  private configKind(bus: number, write: boolean): string | null {
    const rp = this.rootPort;
    // Only device 0 exists below a root port (a point-to-point link); others read as absent.
    if (bus === rp.secondaryBus()) return write ? 'CfgWr0' : 'CfgRd0';
    if (rp.routesBus(bus)) return write ? 'CfgWr1' : 'CfgRd1';
    return null;
  }

  /** A posted MMIO write from the CPU (e.g. a doorbell). */
  mmioWrite(address: number, data: Uint8Array): void {
    this.enqueue(Tlp.memWrite(this.requesterId, address, data));
  }

  mmioWrite32(address: number, value: number): void {
    this.mmioWrite(address, new Uint8Array([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24]));
  }

  /** An MMIO read from the CPU; the CPU stalls until the completion (modelled by the callback). */
  mmioRead32(address: number, cb: (value: number) => void): void {
    this.request(Tlp.memRead(this.requesterId, 0, address, 4), 4, (d) => cb(d ? (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0 : 0xffffffff));
  }

  /** Registers the handler for an MSI data value (the vector the driver programmed). */
  onMsi(data: number, handler: () => void): void {
    this.msiHandlers.set(data, handler);
  }

  /** CPU requests waiting, outstanding reads (by count: tags are labels), reads of DRAM in service; MSI handlers named by vector. */
  digest(d: StateDigest): void {
    d.section(this.label === 'rc' ? 'root-complex' : `${this.label}:root-complex`);
    d.num(this.pendingReads.size);
    digestTlps(d, this.outQ);
    digestTlps(d, this.readsInService);
    d.name(this.readServed, `${this.label}>read-served`);
    for (const [v, h] of this.msiHandlers) d.name(h, `${this.label}>msi${v}`);
  }

  private request(tlp: Tlp, lengthBytes: number, cb: (data: Uint8Array | null) => void): void {
    let tag = this.nextTag;
    for (let i = 0; i < 256 && this.pendingReads.has(tag); i++) tag = (tag + 1) & 0xff;
    if (this.pendingReads.has(tag)) throw new Error('root complex: all 256 tags in use');
    this.nextTag = (tag + 1) & 0xff;
    tlp.tag = tag;
    this.pendingReads.set(tag, { cb, buf: new Uint8Array(lengthBytes), received: 0 });
    this.enqueue(tlp);
  }

  private enqueue(tlp: Tlp): void {
    if (this.outQ.length === 0 && this.port.send(tlp)) return;
    const limit = this.queueLimit();
    if (this.outQ.length >= limit) throw new Error(`root complex: more than ${limit} TLPs wait for the host link (CPU requests and read completions)`);
    this.outQ.push(tlp);
  }

  /** The outQ's bound (see CPU_QUEUE_LIMIT). */
  private queueLimit(): number {
    return CPU_QUEUE_LIMIT + this.readRequesters.size * READ_TAGS_PER_REQUESTER * (Math.ceil(4096 / this.params.readCompletionBytes) + 1);
  }

  portReady(): void {
    while (this.outQ.length > 0 && this.port.send(this.outQ.peek()!)) this.outQ.shift();
  }

  // ---- Device side: DMA to and from DRAM, MSI, completions ------------------------------------

  receiveTlp(tlp: Tlp, port: PciePort): void {
    port.release(tlp);
    switch (tlp.kind) {
      case 'MWr':
        if (tlp.address >= MSI_ADDRESS_BASE && tlp.address < MSI_ADDRESS_END) return this.interrupt(tlp);
        if (!this.isDram(tlp.address, tlp.data!.length)) {
          this.counters.unsupported++;
          return;
        }
        this.memory.write(tlp.address, tlp.data!);
        this.counters.dmaWriteBytes += tlp.data!.length;
        return;
      case 'MRd':
        return this.serveRead(tlp);
      case 'Cpl':
      case 'CplD':
        return this.completion(tlp);
      default:
        this.counters.unsupported++;
        this.enqueue(Tlp.completion(tlp, this.requesterId, CPL_STATUS.UR, null, 0, 0));
    }
  }

  private interrupt(tlp: Tlp): void {
    const d = tlp.data!;
    const vector = d[0] | (d[1] << 8);
    const h = this.msiHandlers.get(vector);
    this.counters.interrupts++;
    if (h) this.scheduler.schedule(this.params.interruptLatencyNs * 1000, h);
  }

  /** Reads DRAM after the memory latency and returns completions split at the completion size. */
  private serveRead(req: Tlp): void {
    this.readRequesters.add(req.requesterId);
    const len = spanBytes(req);
    if (!this.isDram(req.address, len)) {
      // A read burst that leaves DRAM: each request is answered (or refused) on its own, as per-TLP's.
      if (req.reads !== null) {
        for (let i = 0; i < req.count; i++) this.serveRead(constituent(req, i));
        return;
      }
      this.counters.unsupported++;
      this.enqueue(Tlp.completion(req, this.requesterId, CPL_STATUS.UR, null, 0, 0));
      return;
    }
    this.scheduler.schedule(this.params.memoryReadLatencyNs * 1000, this.readServed);
    this.readsInService.push(req);
  }

  /** The oldest device read has waited the memory latency: its completions go out. */
  private readonly readServed = (): void => {
    const req = this.readsInService.shift()!;
    const len = spanBytes(req);
    const data = this.memory.read(req.address, len);
    this.counters.dmaReadBytes += len;
    const rcb = this.params.readCompletionBytes;
    if (this.port.burstBytes > 0) {
      // Burst granularity: the same completions as one burst (pcie/burst.ts); a read burst's requests
      // are each served the memory latency after it arrived.
      const latencyPs = this.params.memoryReadLatencyNs * 1000;
      const arrived = req.reads !== null ? req.readyPs : null;
      const ready = arrived ? arrived.map((a) => a + latencyPs) : null;
      this.enqueue(completionBurst(req, this.requesterId, CPL_STATUS.SC, data, (addr, rest) => Math.min(rcb - (addr % rcb), rest), ready));
      return;
    }
    let off = 0;
    while (off < len) {
      const addr = req.address + off;
      const n = Math.min(rcb - (addr % rcb), len - off);
      this.enqueue(Tlp.completion(req, this.requesterId, CPL_STATUS.SC, data.subarray(off, off + n), len - off, addr));
      off += n;
    }
  };

  private completion(tlp: Tlp): void {
    const p = this.pendingReads.get(tlp.tag);
    if (!p) return; // unexpected completion: dropped (would be logged as an error by real hardware)
    if (tlp.status !== CPL_STATUS.SC) {
      this.pendingReads.delete(tlp.tag);
      p.cb(null);
      return;
    }
    if (tlp.data) {
      p.buf.set(tlp.data, p.received);
      p.received += tlp.data.length;
    }
    if (p.received >= p.buf.length) {
      this.pendingReads.delete(tlp.tag);
      p.cb(p.buf);
    }
  }
}
