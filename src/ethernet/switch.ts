import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import { wireBytes, withReady, type Frame } from './frame.js';
import { EthPort, type EthPortParams, type FrameReceiver } from './port.js';

/**
 * How a switch forwards (what its datasheet's latency measures): `store-and-forward` from the last bit
 * of a frame in to its first bit out; `cut-through` from the first bit in to the first bit out.
 */
export type SwitchForwarding = 'store-and-forward' | 'cut-through';
export const SWITCH_FORWARDING: readonly SwitchForwarding[] = ['store-and-forward', 'cut-through'];

export interface SwitchParams extends EthPortParams {
  /** Port-to-port latency, ns, as `forwarding` defines it. */
  latencyNs: number;
  /** Store-and-forward when absent. */
  forwarding?: SwitchForwarding;
  /** Number of ports. */
  ports: number;
  /** MAC table capacity (entries); learning stops when full and unknown destinations flood. */
  macTableEntries: number;
}

const MAC_CACHE_SLOTS = 16; // a power of two

export interface SwitchCounters {
  [k: string]: number;
  forwarded: number;
  flooded: number;
  filtered: number;
  drops: number;
}

/**
 * An Ethernet switch with MAC learning and 802.1Q VLAN isolation: a frame goes to the port that
 * learned its destination (or is flooded to every other port of its VLAN), into that port's bounded
 * buffer. Store-and-forward: it leaves no earlier than the latency after its last bit arrived.
 * Cut-through: its first bit may leave the latency after its first bit arrived; all ports run at one
 * rate, so its last bit leaves the latency after its last bit arrived. A frame reaches the switch (an
 * event) only once whole, so cut-through is modelled as a forwarding delay of the latency less the
 * frame's serialization time, from then; at least zero, so a frame longer than the latency's worth of
 * bits (none at 100 Gb/s, where the largest frame takes 123 ns) leaves as soon as it is whole.
 */
export class EthSwitch implements FrameReceiver {
  readonly ports: EthPort[] = [];
  private readonly macTable = new Map<number, EthPort>();
  /**
   * A direct-mapped cache of learned entries (a learned MAC never moves: no aging), so most frames
   * skip hashing their 48-bit source and destination MACs.
   */
  private readonly cachedMac = new Float64Array(MAC_CACHE_SLOTS).fill(-1);
  private readonly cachedPort: (EthPort | null)[] = Array.from({ length: MAC_CACHE_SLOTS }, () => null);
  private readonly latencyPs: number;
  private readonly cutThrough: boolean;
  private readonly psPerByte: number;
  /** VLANs each port is a member of; an empty set means every VLAN (a trunk). */
  private readonly vlanMembers = new Map<EthPort, Set<number>>();
  /** Ports restricted to some VLANs; while there are none (every preset), every port carries every VLAN. */
  private restrictedPorts = 0;
  readonly counters: SwitchCounters = { forwarded: 0, flooded: 0, filtered: 0, drops: 0 };

  constructor(
    readonly name: string,
    scheduler: Scheduler,
    readonly params: SwitchParams,
    trace?: TraceRegistry,
  ) {
    this.latencyPs = Math.round(params.latencyNs * 1000);
    this.cutThrough = params.forwarding === 'cut-through';
    this.psPerByte = 8e12 / params.rateBitsPerSec;
    for (let i = 0; i < params.ports; i++) {
      const p = new EthPort(`${name}.p${i}`, scheduler, params, this, trace);
      this.ports.push(p);
      this.vlanMembers.set(p, new Set());
    }
    trace?.register(`switch.${name}`, () => this.counters);
  }

  /** Restricts a port to the given VLANs (access port); by default a port carries every VLAN. */
  setVlans(port: number, vlans: number[]): void {
    this.vlanMembers.set(this.ports[port], new Set(vlans));
    this.restrictedPorts = 0;
    for (const s of this.vlanMembers.values()) if (s.size > 0) this.restrictedPorts++;
  }

  private carries(port: EthPort, vlan: number): boolean {
    if (this.restrictedPorts === 0) return true;
    const s = this.vlanMembers.get(port)!;
    return s.size === 0 || s.has(vlan);
  }

  /** The port that learned `mac`, or undefined. */
  private learnedPort(mac: number): EthPort | undefined {
    const i = mac % MAC_CACHE_SLOTS;
    if (this.cachedMac[i] === mac) return this.cachedPort[i]!;
    const port = this.macTable.get(mac);
    if (port !== undefined) {
      this.cachedMac[i] = mac;
      this.cachedPort[i] = port;
    }
    return port;
  }

  /** From the frame's last bit in to the earliest start of its transmission, ps. */
  private forwardingDelayPs(frame: Frame): number {
    if (!this.cutThrough) return this.latencyPs;
    const delay = this.latencyPs - Math.ceil(wireBytes(frame.payloadBytes) * this.psPerByte);
    return delay > 0 ? delay : 0;
  }

  /** A burst: each frame may leave its forwarding delay after it arrived whole (as per frame). */
  private forwardBurst(frame: Frame, out: EthPort, forwarded = true): void {
    const parts = frame.parts!;
    if (!this.cutThrough) {
      // Store and forward: every frame the same delay after it arrived, which the port adds itself.
      if (forwarded) this.counters.forwarded += parts.length;
      const before = out.counters.drops;
      out.send(frame, this.latencyPs);
      this.counters.drops += out.counters.drops - before;
      return;
    }
    const ready = frame.readyPs!;
    const at = new Float64Array(parts.length);
    for (let i = 0; i < parts.length; i++) {
      let delay = this.latencyPs;
      if (this.cutThrough) {
        delay -= Math.ceil(wireBytes(parts[i]) * this.psPerByte);
        if (delay < 0) delay = 0;
      }
      at[i] = ready[i] + delay;
    }
    if (forwarded) this.counters.forwarded += parts.length;
    const before = out.counters.drops; // frames that overflow the output buffer are dropped one by one
    out.send(withReady(frame, at), 0);
    this.counters.drops += out.counters.drops - before;
  }

  receiveFrame(frame: Frame, inPort: EthPort): void {
    if (!this.carries(inPort, frame.vlan)) {
      this.counters.filtered++;
      return;
    }
    if (this.learnedPort(frame.src) === undefined && this.macTable.size < this.params.macTableEntries) this.macTable.set(frame.src, inPort);
    const out = this.learnedPort(frame.dst);
    if (out !== undefined) {
      if (out === inPort) return; // destination is on the segment it came from
      if (!this.carries(out, frame.vlan)) {
        this.counters.filtered++;
        return;
      }
      if (frame.parts) return this.forwardBurst(frame, out);
      this.counters.forwarded++;
      if (!out.send(frame, this.forwardingDelayPs(frame))) this.counters.drops++;
      return;
    }
    if (frame.parts) {
      // A burst for a MAC not learnt yet (a bridge in another box that has sent nothing through this
      // switch) floods as its frames would: each port gets a copy with its own times (forwardBurst).
      this.counters.flooded += frame.parts.length;
      for (const p of this.ports) {
        if (p === inPort || !this.carries(p, frame.vlan) || !p.channel) continue;
        this.forwardBurst(frame, p, false);
      }
      return;
    }
    this.counters.flooded++;
    const delay = this.forwardingDelayPs(frame);
    for (const p of this.ports) {
      if (p === inPort || !this.carries(p, frame.vlan) || !p.channel) continue;
      if (!p.send(frame, delay)) this.counters.drops++;
    }
  }
}
