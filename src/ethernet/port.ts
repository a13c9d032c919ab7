import { labelCallback, type StateDigest } from '../core/digest.js';
import { Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import { WireTimeline } from '../core/wire-timeline.js';
import { Frame, MAX_PAYLOAD_BYTES, wireBytes, withReady } from './frame.js';

/**
 * Splits a burst frame at the frames `isHit` names: the runs between them go to `clean` (as one frame
 * of their own, or the burst itself when nothing was hit), each hit frame alone to `hit`. The layer
 * that makes bursts knows their format (expether/burst-frames.ts splitAtHits); the builder hands it in.
 */
export type BurstSplitter = (frame: Frame, isHit: (i: number) => boolean, clean: (run: Frame, from: number, to: number) => void, hit: (one: Frame, i: number) => void) => void;

export interface FrameReceiver {
  receiveFrame(frame: Frame, port: EthPort): void;
}

export interface EthPortParams {
  /** Line rate, bits per second (10GbE: 10e9). */
  rateBitsPerSec: number;
  /** Output buffer, bytes of frames waiting to be serialized; a frame that does not fit is dropped. */
  queueLimitBytes: number;
  /** Largest frame payload the port sends (its MTU): the topology's `ethernet.maxPayloadBytes`; default 1500. */
  maxPayloadBytes?: number;
}

export interface EthPortCounters {
  [k: string]: number;
  txFrames: number;
  txWireBytes: number;
  txPayloadBytes: number;
  drops: number;
  busyPs: number;
  maxQueuedBytes: number;
  /** Time frames carrying read requests waited in this output buffer behind earlier frames, summed over them. */
  readQueuedPs: number;
}

/**
 * An Ethernet port (ns-3's "device" half of a link): it owns the output queue and serialization.
 * The queue is analytic: a frame committed to the port starts at max(earliest, busyUntil), so the
 * bytes queued at any instant are (busyUntil - now) * rate (a switch's port at burst granularity
 * places frames on a timeline instead: `gapFill`). One event per frame: its arrival.
 */
export class EthPort {
  private busyUntilPs = 0;
  /**
   * Burst granularity, set by the builder on switch ports: frames are placed on a timeline of the
   * frames committed so far (core/wire-timeline.ts), in the order they entered the buffer, instead of
   * behind the last one committed. Off for per-TLP runs (which never leave gaps
   * behind a frame that entered later, so the result would be the same) and on bridges' ports, whose
   * frames carry sequence numbers in the order they are committed (tried: no better on the matrix).
   */
  gapFill = false;
  /** The frames committed (gapFill only). */
  private timeline: WireTimeline | null = null;
  private readonly psPerByte: number;
  /** `params.maxPayloadBytes` (a frame above it is a bug of the layer that made it: `send` throws). */
  readonly maxPayloadBytes: number;
  channel: EthChannel | null = null;
  /** How a burst some of whose frames overflow the buffer goes on in pieces (`sendBurst`); set by the builder. */
  splitBurst: BurstSplitter | null = null;
  readonly counters: EthPortCounters = { txFrames: 0, txWireBytes: 0, txPayloadBytes: 0, drops: 0, busyPs: 0, maxQueuedBytes: 0, readQueuedPs: 0 };

  constructor(
    readonly name: string,
    readonly scheduler: Scheduler,
    /** Replaced (never mutated: ports share one object) by `limitQueue`. */
    public params: EthPortParams,
    public owner: FrameReceiver | null = null,
    trace?: TraceRegistry,
  ) {
    this.psPerByte = 8e12 / params.rateBitsPerSec;
    this.maxPayloadBytes = params.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    trace?.register(`eth.${name}`, () => this.counters);
  }

  /**
   * Bytes waiting in the output buffer ahead of a frame that enters it `delayPs` from now (after a
   * switch's forwarding latency, say: a frame in the forwarding pipeline is not in the buffer yet).
   */
  queuedBytes(delayPs = 0): number {
    const ahead = this.busyUntilPs - this.scheduler.now() - delayPs;
    return ahead > 0 ? ahead / this.psPerByte : 0;
  }

  /** True when a frame of this payload size, entering the buffer `delayPs` from now, would fit. */
  hasRoom(payloadBytes: number, delayPs = 0): boolean {
    return this.queuedBytes(delayPs) + wireBytes(payloadBytes) <= this.params.queueLimitBytes;
  }

  /**
   * How long from now until a frame of this payload size, entering `delayPs` from now, fits the
   * buffer (0: it fits now): the backlog drains at line rate, so this is exact. A frame larger than
   * the whole buffer never fits (Infinity).
   */
  roomInPs(payloadBytes: number, delayPs = 0): number {
    if (wireBytes(payloadBytes) > this.params.queueLimitBytes) return Infinity;
    const waitPs = this.roomAtPs(this.busyUntilPs, wireBytes(payloadBytes), delayPs) - this.scheduler.now();
    return waitPs > 0 ? Math.ceil(waitPs) : 0;
  }

  /** When a frame of `bytes` on the wire, entering `delayPs` after, fits behind a backlog that ends at `busyPs` (not rounded). */
  private roomAtPs(busyPs: number, bytes: number, delayPs: number): number {
    return busyPs - delayPs - (this.params.queueLimitBytes - bytes) * this.psPerByte;
  }

  /** Time this port takes to serialize a frame of this payload, ps (first bit out to last bit out). */
  serializationPs(payloadBytes: number): number {
    return Math.ceil(wireBytes(payloadBytes) * this.psPerByte);
  }

  /** Shrinks this port's output buffer (fault injection: `--fault buffer=8KiB@LINK` makes it overflow under load). */
  limitQueue(bytes: number): void {
    this.params = { ...this.params, queueLimitBytes: bytes };
  }

  /** The output backlog (the frames in it are on their cable's ring). */
  digest(d: StateDigest): void {
    d.section(this.name);
    d.until(this.busyUntilPs);
  }

  /**
   * Commits a frame for transmission no earlier than `delayPs` from now. Returns false (and counts a
   * drop) when the output buffer is full: Ethernet drops, and ExpEther's retransmission recovers.
   */
  send(frame: Frame, delayPs = 0): boolean {
    const ch = this.channel;
    if (!ch) throw new Error(`Ethernet port ${this.name} is not connected`);
    if (frame.parts) return this.sendBurst(ch, frame, delayPs);
    if (frame.payloadBytes > this.maxPayloadBytes) throw new RangeError(`Ethernet port ${this.name}: a payload of ${frame.payloadBytes} B exceeds the port's ${this.maxPayloadBytes} B (ethernet.maxPayloadBytes)`);
    const bytes = wireBytes(frame.payloadBytes);
    const queued = this.queuedBytes(delayPs);
    if (queued + bytes > this.params.queueLimitBytes) {
      this.counters.drops++;
      return false;
    }
    if (queued + bytes > this.counters.maxQueuedBytes) this.counters.maxQueuedBytes = queued + bytes;
    const now = this.scheduler.now();
    const earliest = now + delayPs;
    const dur = this.serializationPs(frame.payloadBytes);
    const start = this.gapFill ? this.place(earliest, dur, earliest) : this.busyUntilPs > earliest ? this.busyUntilPs : earliest;
    if (start + dur > this.busyUntilPs) this.busyUntilPs = start + dur;
    const c = this.counters;
    if (frame.readRequest) c.readQueuedPs += start - earliest;
    c.txFrames++;
    c.txWireBytes += bytes;
    c.txPayloadBytes += frame.payloadBytes;
    c.busyPs += dur;
    ch.carry(this, frame, start + dur - now);
    return true;
  }

  /** Where a frame that entered at `enteredPs` starts (gapFill): core/wire-timeline.ts. */
  private place(earliestPs: number, durPs: number, enteredPs: number): number {
    return (this.timeline ??= new WireTimeline()).place(earliestPs, durPs, enteredPs);
  }

  /**
   * A burst of frames (ethernet/frame.ts `parts`): each served as per-frame serves a flow that has
   * the port to itself, start = max(ready + delay, busyUntil) (possibly before now: serialization is
   * analytic), in one event at the last one's arrival; the far end gets the frames' arrival times.
   * Each frame meets the buffer as per-frame's would, when it enters: one that does not fit is
   * dropped (a switch's output overflowing), and the frames around it go on as runs of their own
   * (`splitBurst`). A bridge admits only what fits (`admitBurst`), so its own port never drops.
   */
  private sendBurst(ch: EthChannel, frame: Frame, delayPs: number): boolean {
    const parts = frame.parts!;
    const n = parts.length;
    const now = this.scheduler.now();
    const ready = frame.readyPs;
    const done = new Float64Array(n);
    const limit = this.params.queueLimitBytes;
    const c = this.counters;
    let busy = this.busyUntilPs;
    let prevEnd = -Infinity;
    let dropped: Uint8Array | null = null;
    let drops = 0;
    let payload = 0;
    for (let i = 0; i < n; i++) {
      if (parts[i] > this.maxPayloadBytes) throw new RangeError(`Ethernet port ${this.name}: a payload of ${parts[i]} B exceeds the port's ${this.maxPayloadBytes} B (ethernet.maxPayloadBytes)`);
      const earliest = (ready ? ready[i] : now) + delayPs;
      const bytes = wireBytes(parts[i]);
      const queued = busy > earliest ? (busy - earliest) / this.psPerByte : 0;
      if (queued + bytes > limit) {
        (dropped ??= new Uint8Array(n))[i] = 1;
        drops++;
        continue;
      }
      if (queued + bytes > c.maxQueuedBytes) c.maxQueuedBytes = queued + bytes;
      const dur = this.serializationPs(parts[i]);
      let start: number;
      if (this.gapFill) {
        // After this burst's earlier frames (they entered first), in the first gap that holds it.
        start = this.place(earliest > prevEnd ? earliest : prevEnd, dur, earliest);
        prevEnd = start + dur;
        if (prevEnd > busy) busy = prevEnd;
        done[i] = prevEnd;
      } else {
        start = busy > earliest ? busy : earliest;
        busy = start + dur;
        done[i] = busy;
      }
      if (frame.readRequest) c.readQueuedPs += start - earliest;
      c.txWireBytes += bytes;
      c.busyPs += dur;
      payload += parts[i];
    }
    c.drops += drops;
    if (drops === n) return false;
    this.busyUntilPs = busy;
    c.txFrames += n - drops;
    c.txPayloadBytes += payload;
    const timed = withReady(frame, done);
    const last = this.gapFill ? prevEnd : busy;
    if (dropped === null) {
      ch.carry(this, timed, last > now ? last - now : 0);
      return true;
    }
    const split = this.splitBurst;
    if (!split) throw new Error(`Ethernet port ${this.name}: ${drops} of a burst's ${n} frames overflow its buffer, and nothing splits the burst (set EthPort.splitBurst)`);
    const drop = dropped;
    split(
      timed,
      (i) => drop[i] === 1,
      (run, _from, to) => ch.carry(this, run, done[to - 1] > now ? done[to - 1] - now : 0),
      () => {},
    );
    return true;
  }

  /**
   * A bridge's burst as per-frame's bridge would send it, which waits for room in this buffer before
   * each frame (`hasRoom`): moves each frame's start (`startsPs`, when it would enter the buffer
   * `delayPs` later) to no earlier than the earlier frames have drained enough for it.
   */
  admitBurst(parts: Uint16Array, startsPs: Float64Array, delayPs: number): void {
    let busy = this.busyUntilPs;
    for (let i = 0; i < parts.length; i++) {
      const roomAt = Math.ceil(this.roomAtPs(busy, wireBytes(parts[i]), delayPs));
      if (startsPs[i] < roomAt) startsPs[i] = roomAt;
      const earliest = startsPs[i] + delayPs;
      busy = (busy > earliest ? busy : earliest) + this.serializationPs(parts[i]);
    }
  }
}

/**
 * The channel half of a link: it adds propagation delay and delivers to the far port. Swapping the
 * channel (e.g. for one that writes to a socket) moves a link across processes; ports are unchanged.
 */
export interface EthChannel {
  carry(from: EthPort, frame: Frame, serializedInPs: number): void;
}

/**
 * A point-to-point cable with a fixed propagation delay; it may drop frames for fault injection.
 * What travels on the wire is `toWire(frame)`, turned back into a frame by `fromWire` at the far
 * end: here the frame object itself; a subclass may carry bytes (expether/bytes-channel.ts), so the
 * receiver shares nothing with the sender. Timing depends only on the frame's `payloadBytes`.
 */
export class CableChannel implements EthChannel {
  private readonly propagationPs: number;
  /** Fault injection for tests: return true to lose the frame on the wire. */
  dropFilter: ((frame: Frame) => boolean) | null = null;
  lostFrames = 0;
  private readonly toB: CableDirection;
  private readonly toA: CableDirection;

  constructor(
    readonly a: EthPort,
    readonly b: EthPort,
    /** Propagation delay, ns (about 5 ns per metre of fibre or copper). */
    propagationNs: number,
  ) {
    this.propagationPs = Math.round(propagationNs * 1000);
    this.toB = new CableDirection(b, this);
    this.toA = new CableDirection(a, this);
    a.channel = this;
    b.channel = this;
  }

  /** Frames on the wire both ways; a cable that drops frames (fault injection) is never periodic. */
  digest(d: StateDigest, frame: (f: Frame) => void): void {
    if (this.dropFilter) d.str(`lossy${this.lostFrames}`);
    this.toB.digest(d, frame);
    this.toA.digest(d, frame);
  }

  carry(from: EthPort, frame: Frame, serializedInPs: number): void {
    if (this.dropFilter?.(frame)) {
      this.lostFrames++;
      return;
    }
    if (frame.readyPs) {
      // A burst: each frame arrives its propagation after its last bit left (the port made these times).
      if (this.dropFilter) throw new Error('a cable that drops frames cannot carry bursts: use --granularity tlp with faults');
      for (let i = 0; i < frame.readyPs.length; i++) frame.readyPs[i] += this.propagationPs;
    }
    (from === this.a ? this.toB : this.toA).carry(from.scheduler, this.toWire(frame), serializedInPs + this.propagationPs);
  }

  /** The frame as it travels on the wire, made at the sender (the frame itself here). */
  toWire(frame: Frame): unknown {
    return frame;
  }

  /** The frame the far end receives from what `toWire` made; also called to digest frames on the wire. */
  fromWire(wire: unknown): Frame {
    return wire as Frame;
  }
}

/**
 * Frames on their way to one end of a cable. A port serializes frames one after another, so they
 * reach the far end in the order they were sent: they wait in a FIFO and each arrival event runs
 * one preallocated callback that takes the head (no closure per frame). A frame that would overtake
 * one already on the wire (possible only for a caller other than EthPort: a faulty cable's reordering)
 * waits in a second FIFO (`passing`) while such frames keep their own order, else gets its own event.
 */
class CableDirection {
  /** What is on the wire toward `to`, oldest first, each as the cable's `toWire` made it. */
  private readonly frames = new Ring<unknown>();
  private lastArrivalPs = -Infinity;
  /**
   * Frames that overtake the last one in `frames` (a frame a faulty cable held back for reordering
   * makes the frames after it overtake it), while they still arrive in their own order: a second
   * FIFO with its own preallocated callback, as `frames`. Unbounded only as `frames` is: by what the
   * port has serialized and the propagation delay.
   */
  private readonly passing = new Ring<unknown>();
  private lastPassingPs = -Infinity;
  /** Frames that took their own event so far: only makes their digest labels unique. */
  private overtaking = 0;

  constructor(
    private readonly to: EthPort,
    private readonly cable: CableChannel,
  ) {}

  digest(d: StateDigest, frame: (f: Frame) => void): void {
    d.section(`cable>${this.to.name}`);
    d.until(this.lastArrivalPs);
    d.num(this.frames.length);
    for (let i = 0; i < this.frames.length; i++) frame(this.cable.fromWire(this.frames.at(i)));
    d.name(this.arriveNext, `cable>${this.to.name}>arrive`);
    d.until(this.lastPassingPs);
    d.num(this.passing.length);
    for (let i = 0; i < this.passing.length; i++) frame(this.cable.fromWire(this.passing.at(i)));
    d.name(this.arrivePassing, `cable>${this.to.name}>arrive-passing`);
  }

  carry(scheduler: Scheduler, frame: unknown, delayPs: number): void {
    const at = scheduler.now() + Math.ceil(delayPs);
    if (at >= this.lastArrivalPs) {
      scheduler.schedule(delayPs, this.arriveNext); // first: it throws on a bad delay
      this.frames.push(frame);
      this.lastArrivalPs = at;
    } else if (at >= this.lastPassingPs) {
      scheduler.schedule(delayPs, this.arrivePassing);
      this.passing.push(frame);
      this.lastPassingPs = at;
    } else {
      this.carryAlone(scheduler, frame, delayPs);
    }
  }

  /** Its own method: a closure here would make every call of `carry` allocate the captured context. */
  private carryAlone(scheduler: Scheduler, frame: unknown, delayPs: number): void {
    // Rare (never on an EthPort's path; a frame overtaking both FIFOs' last); its frame is in neither
    // ring, so a digest cannot see it: the label is unique, so no state holding one is ever taken for a repeat.
    scheduler.schedule(delayPs, labelCallback(() => this.deliver(frame), `?overtaking frame ${this.to.name} #${++this.overtaking}`));
  }

  private readonly arriveNext = (): void => {
    this.deliver(this.frames.shift());
  };

  private readonly arrivePassing = (): void => {
    this.deliver(this.passing.shift());
  };

  private deliver(wire: unknown): void {
    const to = this.to;
    if (!to.owner) throw new Error(`Ethernet port ${to.name} received a frame but has no owner`);
    to.owner.receiveFrame(this.cable.fromWire(wire), to);
  }
}
