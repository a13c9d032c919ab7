import type { StateDigest } from '../core/digest.js';
import { Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';
import { serveConfig } from '../pcie/config-tlps.js';
import { endpointConfig, type BarSpec, type ConfigSpace } from '../pcie/config-space.js';
import type { PciePort, TlpReceiver } from '../pcie/link.js';
import { bdfBus, CPL_STATUS, digestTlps, Tlp } from '../pcie/tlp.js';
import { DmaEngine, type DmaParams } from './dma-engine.js';
import { completionBurst, constituent, spanBytes } from '../pcie/burst.js';

/** Who the function says it is in configuration space (Linux matches drivers on these). */
export interface EndpointIdentity {
  vendorId: number;
  deviceId: number;
  /** 24 bits: base class, subclass, programming interface. */
  classCode: number;
  /** Memory BARs, BAR0 first; null leaves a BAR unimplemented (a NIC with registers in BAR0 and BAR2, say). */
  bars: Array<BarSpec | null>;
  /** An MSI capability (a device that interrupts). */
  msi?: boolean;
}

/** The counters the core keeps in the device's own counter object (so they trace with the device's). */
export interface EndpointCounters {
  /** Requests refused as Unsupported Request: memory requests not wholly inside a BAR (a read gets a UR completion), other kinds. */
  unsupportedRequests: number;
  /** Of those, posted writes (no completion tells the sender: the count is the only trace, as QEMU counts guest errors). */
  writesOutsideBar: number;
}

/**
 * What a device on the endpoint core implements (SimBricks' device interface: RegRead, RegWrite,
 * DmaComplete, Timed; a NIC's Ethernet side is its own). Only memory requests wholly inside one of its
 * BARs reach it; configuration, UR, completions of its DMA and the transmit queue are the core's.
 */
export interface EndpointDevice {
  /**
   * A register read of `lengthBytes` at `offset` in BAR `bar`: the data, little-endian (served at once:
   * registers answer from the PCIe core, as on an FPGA or ASIC register file). Absent when `memoryRequest` serves every request.
   */
  regRead?(bar: number, offset: number, lengthBytes: number): Uint8Array;
  /** A register write (posted): `data` at `offset` in BAR `bar`. */
  regWrite?(bar: number, offset: number, data: Uint8Array): void;
  /**
   * Instead of registers, a BAR backed by memory with its own timing (the DC buffer's DDR): the device
   * takes the request, calls `endpoint.release(tlp)` once it leaves the PCIe core's receive buffer (until
   * then the link's credits stay withheld), and answers a read with `endpoint.sendReadData`.
   */
  memoryRequest?(tlp: Tlp, bar: number, offset: number): void;
  /** The link has room again (after the core's own queue and the DMA engine were served). */
  portReady?(): void;
}

export interface EndpointOptions {
  identity: EndpointIdentity;
  link: { generation: number; lanes: number };
  /** A bus-master DMA engine (absent: a target-only device, like the DC buffer). */
  dma?: DmaParams;
  counters: EndpointCounters;
}

/**
 * The PCIe target side every endpoint shares: configuration space, BAR decode, the completer id,
 * Unsupported Request for what no BAR claims, a bounded-by-credits control transmit queue, the DMA
 * engine and MSI. A device implements registers (or a memory BAR), DMA completions and its own timing.
 */
export class PcieEndpoint implements TlpReceiver {
  readonly config: ConfigSpace;
  readonly dma: DmaEngine | null;
  private busNumber = 0;
  /**
   * TLPs the core or the device sent while the link refused: completions of register reads and of
   * memory reads. Bounded by what requesters may have outstanding (their tags and the link's
   * non-posted credits), since each entry answers one request.
   */
  readonly txQueue = new Ring<Tlp>();
  private device!: EndpointDevice;

  constructor(
    readonly name: string,
    scheduler: Scheduler,
    private readonly port: PciePort,
    private readonly o: EndpointOptions,
  ) {
    const id = o.identity;
    this.config = endpointConfig({ vendorId: id.vendorId, deviceId: id.deviceId, classCode: id.classCode, bars: id.bars, msi: id.msi, pcieEndpoint: true, linkGen: o.link.generation, linkLanes: o.link.lanes });
    this.dma = o.dma ? new DmaEngine(port, () => this.completerId, o.dma, scheduler) : null;
  }

  /** Starts serving the port for `device` (the device's constructor calls it once its state exists). */
  attach(device: EndpointDevice): void {
    this.device = device;
    this.port.attach(this);
  }

  /** Bus:device.function the function answers as: its bus number (learnt from configuration requests), device 0, function 0. */
  get completerId(): number {
    return this.busNumber << 8;
  }

  receiveTlp(tlp: Tlp, port: PciePort): void {
    const kind = tlp.kind;
    if (kind === 'CfgRd0' || kind === 'CfgWr0') {
      port.release(tlp);
      this.busNumber = bdfBus(tlp.targetId);
      this.send(serveConfig(this.config, tlp, this.completerId));
      return;
    }
    if (kind === 'Cpl' || kind === 'CplD') {
      port.release(tlp);
      if (this.dma) this.dma.completion(tlp);
      else this.o.counters.unsupportedRequests++; // a target-only function never asked for it
      return;
    }
    const bar = kind === 'MWr' || kind === 'MRd' ? this.config.barContains(tlp.address) : -1;
    const offset = bar >= 0 ? tlp.address - this.config.barAddress(bar) : 0;
    if (bar < 0 || offset + spanBytes(tlp) > this.config.barSize(bar)) {
      // A read burst that leaves the BAR: each request is answered (or refused) on its own, as per-TLP's.
      if (tlp.reads !== null) {
        for (let i = 0; i < tlp.count; i++) this.receiveTlp(constituent(tlp, i), port);
        return;
      }
      port.release(tlp);
      // Unsupported Request (PCIe 2.3.1): a non-posted request gets a UR completion; a posted write is dropped, and counted.
      this.o.counters.unsupportedRequests++;
      if (kind === 'MWr') this.o.counters.writesOutsideBar++;
      else this.send(Tlp.completion(tlp, this.completerId, CPL_STATUS.UR, null, 0, 0));
      return;
    }
    const dev = this.device;
    if (dev.memoryRequest) return dev.memoryRequest(tlp, bar, offset);
    if (tlp.reads !== null) {
      // Registers answer one request at a time.
      for (let i = 0; i < tlp.count; i++) this.receiveTlp(constituent(tlp, i), port);
      return;
    }
    port.release(tlp);
    if (kind === 'MWr') {
      dev.regWrite?.(bar, offset, tlp.data!);
      return;
    }
    const data = dev.regRead ? dev.regRead(bar, offset, tlp.lengthDw * 4) : new Uint8Array(tlp.lengthDw * 4);
    this.send(Tlp.completion(tlp, this.completerId, CPL_STATUS.SC, data, data.length, tlp.address));
  }

  /**
   * The device took a held memory request out of the PCIe core's receive buffer: its credits return.
   * A burst's device may say when it took each constituent (`freedPs`, ps, none later than now).
   */
  release(tlp: Tlp, freedPs: Float64Array | null = null): void {
    this.port.release(tlp, freedPs);
  }

  /** Whether the link runs at burst granularity (the core then hands the device bursts and builds completion bursts). */
  get bursts(): boolean {
    return this.port.burstBytes > 0;
  }

  /**
   * Answers a memory read with its data: completions of at most `mpsBytes`, every one but the last
   * ending on a naturally aligned read completion boundary of `rcbBytes` (PCIe 2.3.1.1).
   */
  sendReadData(tlp: Tlp, data: Uint8Array, mpsBytes: number, rcbBytes: number, requestReadyPs: Float64Array | null = null): number {
    if (this.bursts) {
      // Burst granularity: the same completions as one burst (pcie/burst.ts); a read burst's requests
      // each become ready at its own time (`requestReadyPs`).
      const burst = completionBurst(tlp, this.completerId, CPL_STATUS.SC, data, (addr, rest) => Math.min(mpsBytes - (addr % rcbBytes), rest), requestReadyPs);
      this.send(burst);
      return burst.count;
    }
    let off = 0;
    let n = 0;
    while (off < data.length) {
      const len = Math.min(mpsBytes - ((tlp.address + off) % rcbBytes), data.length - off);
      this.send(Tlp.completion(tlp, this.completerId, CPL_STATUS.SC, data.subarray(off, off + len), data.length - off, tlp.address + off));
      off += len;
      n++;
    }
    return n;
  }

  /** Sends a TLP the core or device built (a completion), behind any already waiting for the link. */
  send(tlp: Tlp): void {
    if (this.txQueue.length === 0 && this.port.send(tlp)) return;
    this.txQueue.push(tlp);
  }

  /**
   * Signals an MSI if software enabled it: a posted write of the programmed data to the programmed
   * address, through the DMA engine's write queue so it cannot pass the data written before it (PCIe
   * ordering: posted writes stay in order). Returns whether it was sent.
   */
  msi(): boolean {
    if (!this.dma || !this.config.msiEnabled()) return false;
    const v = this.config.msiData();
    this.dma.write(this.config.msiAddress(), new Uint8Array([v & 0xff, (v >>> 8) & 0xff, 0, 0]));
    return true;
  }

  portReady(): void {
    while (this.txQueue.length > 0 && this.port.send(this.txQueue.peek()!)) this.txQueue.shift();
    this.dma?.pump();
    this.device.portReady?.();
  }

  /** The transmit queue, whole (the DMA engine digests itself through `dma`). */
  digestTx(d: StateDigest): void {
    digestTlps(d, this.txQueue);
  }
}

/** Reads a little-endian 32-bit value at `i` of a register write's data. */
export function dwordAt(d: Uint8Array, i: number): number {
  return (d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24)) >>> 0;
}

/** `lengthBytes` of little-endian register values, one 32-bit register per DW from `offset` (`read` gives each). */
export function dwords(offset: number, lengthBytes: number, read: (off: number) => number): Uint8Array {
  const data = new Uint8Array(lengthBytes);
  const dv = new DataView(data.buffer);
  for (let i = 0; i + 4 <= lengthBytes; i += 4) dv.setUint32(i, read(offset + i), true);
  return data;
}
