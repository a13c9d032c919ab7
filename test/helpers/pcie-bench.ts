/**
 * A PCIe test bench for one endpoint: a real PcieLink whose upstream end is the bench (the root port a
 * device would see), so a device under test gets its requests with the link's credits and queues and
 * answers through them. The bench sends configuration and memory requests and completions, collects
 * every TLP the device sends up, and can hold what it receives (withholding its credits) to make the
 * link refuse the device.
 */
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { PcieLink, type FcCredits, type PciePort, type TlpReceiver } from '../../src/pcie/link.js';
import { bdf, Tlp } from '../../src/pcie/tlp.js';

/** The bench's requester id: the root port, bus 0. */
export const BENCH_ID = bdf(0, 0);

/** Credits large enough never to bind. */
export const AMPLE_CREDITS: FcCredits = { postedHeaders: 64, postedDataBytes: 1 << 16, nonPostedHeaders: 64, completionHeaders: Infinity, completionDataBytes: Infinity };

export interface BenchOptions {
  /** Credits the bench's receiver advertises (what the device may send up before the bench releases). */
  upCredits?: FcCredits;
  /** Credits the device's receiver advertises (what the bench may send before the device releases). */
  downCredits?: FcCredits;
  /** Transmit queue per class on each end, TLPs (the device's `send` is refused beyond it). */
  txQueueTlps?: number;
  /** Max payload size on the link, bytes (sets only the ACK interval here). */
  mpsBytes?: number;
}

export class PcieBench implements TlpReceiver {
  readonly s = new VirtualScheduler();
  readonly link: PcieLink;
  /** Every TLP the device sent up, with its arrival time. */
  readonly got: { tlp: Tlp; t: number }[] = [];
  /** Received TLPs not yet released while `hold` is set. */
  readonly held: Tlp[] = [];
  /** While true, received TLPs stay in the bench's buffer (their credits are not returned). */
  hold = false;
  private readonly out: Tlp[] = [];
  private nextTag = 0;

  constructor(o: BenchOptions = {}) {
    this.link = new PcieLink('bench', this.s, { generation: 2, lanes: 4, latencyNs: 100, mpsBytes: o.mpsBytes ?? 128, txQueueTlps: o.txQueueTlps ?? 16 }, o.upCredits ?? AMPLE_CREDITS, o.downCredits ?? AMPLE_CREDITS);
    this.link.up.attach(this);
  }

  /** The port the device under test attaches to. */
  get port(): PciePort {
    return this.link.down;
  }

  receiveTlp(tlp: Tlp, port: PciePort): void {
    this.got.push({ tlp, t: this.s.now() });
    if (this.hold) this.held.push(tlp);
    else port.release(tlp);
  }

  portReady(): void {
    while (this.out.length > 0 && this.link.up.send(this.out[0])) this.out.shift();
  }

  /** Releases what was held and stops holding. */
  releaseHeld(): void {
    this.hold = false;
    for (const t of this.held.splice(0)) this.link.up.release(t);
  }

  /** Sends a TLP down (queued behind earlier ones while the link refuses); returns it. */
  send(tlp: Tlp): Tlp {
    this.out.push(tlp);
    this.portReady();
    return tlp;
  }

  tag(): number {
    const t = this.nextTag;
    this.nextTag = (this.nextTag + 1) & 0xff;
    return t;
  }

  cfgRead(bus: number, register: number): Tlp {
    return this.send(Tlp.config('CfgRd0', BENCH_ID, this.tag(), bdf(bus, 0), register, null));
  }

  cfgWrite(bus: number, register: number, value: number, byteEnables = 0xf): Tlp {
    const t = Tlp.config('CfgWr0', BENCH_ID, this.tag(), bdf(bus, 0), register, le32(value));
    t.firstBe = byteEnables;
    return this.send(t);
  }

  memRead(address: number, lengthBytes: number): Tlp {
    return this.send(Tlp.memRead(BENCH_ID, this.tag(), address, lengthBytes));
  }

  memWrite(address: number, data: Uint8Array): Tlp {
    return this.send(Tlp.memWrite(BENCH_ID, address, data));
  }

  /** Runs the simulation until nothing is left to happen. */
  run(): void {
    this.s.run({ maxEvents: 1e6 });
  }

  /** TLPs received so far, oldest first. */
  tlps(): Tlp[] {
    return this.got.map((g) => g.tlp);
  }

  /** The completions received for request `req` (same requester and tag), oldest first. */
  completionsFor(req: Tlp): Tlp[] {
    return this.tlps().filter((t) => (t.kind === 'Cpl' || t.kind === 'CplD') && t.tag === req.tag && t.requesterId === req.requesterId);
  }

  /** A configuration read answered at once: sends it, runs, returns the DW (throws unless it completed successfully). */
  readConfig(bus: number, register: number): number {
    const req = this.cfgRead(bus, register);
    this.run();
    const [c] = this.completionsFor(req);
    if (!c || c.kind !== 'CplD' || c.status !== 0) throw new Error(`config read of 0x${register.toString(16)} did not complete`);
    return dwordLe(c.data!, 0);
  }

  /** A configuration write, run to its completion. */
  writeConfig(bus: number, register: number, value: number, byteEnables = 0xf): void {
    this.cfgWrite(bus, register, value, byteEnables);
    this.run();
  }

  /**
   * What enumeration does for one BAR: sizes it (all ones, read back), assigns `base`, and returns the
   * size read back (0 for an unimplemented BAR).
   */
  assignBar(bus: number, bar: number, base: number): number {
    const reg = 0x10 + 4 * bar;
    this.writeConfig(bus, reg, 0xffffffff);
    const mask = (this.readConfig(bus, reg) & ~0xf) >>> 0;
    this.writeConfig(bus, reg, base);
    return mask === 0 ? 0 : (~mask + 1) >>> 0;
  }

  /** Turns on memory space and bus mastering (command register). */
  enable(bus: number): void {
    this.writeConfig(bus, 0x04, 0x6, 0x3);
  }
}

export function le32(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
}

export function dwordLe(d: Uint8Array, i: number): number {
  return (d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24)) >>> 0;
}
