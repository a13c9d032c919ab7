import { LevelTimer } from '../core/level-timer.js';
import { NumberRing, Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';
import type { CounterSet, TraceRegistry } from '../core/trace.js';
import type { StateDigest } from '../core/digest.js';
import { Tlp, digestTlp, headerBytes, type TlpKind } from './tlp.js';
import { isBurst, partBytes, partHeaderBytes, sliceBurst } from './burst.js';
import {
  ackIntervalBytes,
  DLLP_BYTES,
  linkBytesPerSec,
  SKP_OVERHEAD_FRACTION,
  TLP_FRAMING_BYTES,
  type PcieGeneration,
  type PcieLanes,
} from './link-params.js';

/** What a component attached to a link end implements. */
export interface TlpReceiver {
  /** A TLP arrived. The receiver must call `port.release(tlp)` once it has taken it out of the port's buffer. */
  receiveTlp(tlp: Tlp, port: PciePort): void;
  /** The port's transmit queue has room again after a refused `send`. */
  portReady?(port: PciePort): void;
}

/** Receive-buffer flow-control credits a port advertises (PCIe FC: header credits count TLPs, data in bytes). */
export interface FcCredits {
  postedHeaders: number;
  postedDataBytes: number;
  nonPostedHeaders: number;
  completionHeaders: number; // Infinity for endpoints and root complexes, as the spec requires
  completionDataBytes: number;
}

export interface PcieLinkParams {
  generation: PcieGeneration;
  lanes: PcieLanes;
  /** One-way latency of PHY, serdes and trace, ns: added after serialization. */
  latencyNs: number;
  /** Max payload size in force on the link, bytes: sets the ACK DLLP interval. */
  mpsBytes: number;
  /** Transmit queue per flow-control class, TLPs: where a sender waits for credits. */
  txQueueTlps: number;
}

/** DLLP stretches a direction keeps movable at burst granularity (Direction.placeTlp): older ones join what is committed. */
const MAX_DLLP_STRETCHES = 32;

/** Flow-control class index (tlp.ts `fcClass`: P 0, NP 1, CPL 2), without the class-name string. */
function classIndex(kind: TlpKind): number {
  return kind === 'MWr' ? 0 : kind === 'Cpl' || kind === 'CplD' ? 2 : 1;
}

/** Counters of one direction of a link: what a PCIe analyzer on it would report. */
export interface LinkDirectionCounters {
  [k: string]: number;
  tlps: number;
  payloadBytes: number;
  wireBytes: number;
  dllps: number;
  busyPs: number;
  creditStalls: number;
  MWrPayloadBytes: number;
  CplDPayloadBytes: number;
  MWr: number;
  MRd: number;
  Cpl: number;
  CplD: number;
  Cfg: number;
  /** Burst granularity: bursts served (each its own event; 0 per TLP), what the DLLP counts' bound is stated in. */
  bursts: number;
}

function newCounters(): LinkDirectionCounters {
  return { tlps: 0, payloadBytes: 0, wireBytes: 0, dllps: 0, busyPs: 0, creditStalls: 0, MWrPayloadBytes: 0, CplDPayloadBytes: 0, MWr: 0, MRd: 0, Cpl: 0, CplD: 0, Cfg: 0, bursts: 0 };
}

/**
 * One direction of a link: serialization (analytic: a TLP is committed to the wire when it has
 * credits, its start is max(now, busyUntil)), propagation, the receiver's credits, and a bounded
 * queue for TLPs waiting for credits. One scheduled event per TLP: its arrival.
 *
 * TLPs on the wire arrive in the order they were committed (each arrives at its busyUntil, which only
 * grows, plus a fixed latency), so they wait in a FIFO and every arrival event runs one preallocated
 * callback that takes the head: no closure per TLP. Likewise at most one UpdateFC is in flight per
 * direction, so its credits sit in a preallocated array.
 */
class Direction {
  busyUntilPs = 0;
  /**
   * Burst granularity: the DLLPs on the wire after busyUntilPs, as stretches [start, end) of DLLPs
   * back to back, oldest first, each with when its first DLLP was sent (`stAtPs`) and the direction
   * whose UpdateFC it carries, if any (`stUpdate`); at most MAX_DLLP_STRETCHES (the oldest then joins
   * what is committed). Per-TLP's DLLP waits behind the TLPs handed over before it was sent, and only
   * those: a burst's constituents are committed at its event, often after DLLPs sent for later times,
   * so each goes behind the stretches sent before it was ready and in front of the rest, which it
   * pushes back (`placeTlp`), and an UpdateFC pushed back lands that much later.
   */
  private readonly stStartPs: number[] = [];
  private readonly stEndPs: number[] = [];
  private readonly stAtPs: number[] = [];
  private readonly stUpdate: (Direction | null)[] = [];
  /** Credits of the receiver's buffer still available to this transmitter: [P hdr, P data, NP hdr, NP data, CPL hdr, CPL data]. */
  readonly credits: Float64Array;
  /** Credits the receiver has freed but not yet returned in an UpdateFC. */
  readonly pendingRelease = new Float64Array(6);
  /** Credits carried by the UpdateFC in flight toward this direction's transmitter. */
  private readonly returning = new Float64Array(6);
  /**
   * Burst granularity only, per class with finite header credits: the credit ledger. A burst's
   * constituents are released together at its end, per-TLP's one by one as they arrived, so per-TLP's
   * transmitter would have had some of those credits back before the burst's release, and before a
   * later burst (whose first constituents may be ready before that release) asked for them. So each
   * credit the receiver frees gets an entry here, until its UpdateFC lands for real: when per-TLP's
   * quarter-batched UpdateFC would have brought it back (`at`; Infinity for a plain TLP's release,
   * which the real update times exactly) and its data bytes. A constituent that finds no real credit
   * may borrow the oldest entries whose time has come, starting no earlier than their `at`; real
   * credits then run below zero until the real update brings them. Entries: at most the class's header
   * credits (each stands for a credit freed and not yet back). Empty in per-TLP runs.
   */
  private readonly ledgerAt = [new NumberRing(), new NumberRing(), new NumberRing()];
  private readonly ledgerBytes = [new NumberRing(), new NumberRing(), new NumberRing()];
  /** Entries borrowed from the ledger's front, oldest first: the next real updates bring these first. */
  private readonly borrowed = [0, 0, 0];
  /**
   * When per-TLP would have had each credit real updates brought back and no TLP has used yet, oldest
   * first (a credit not listed was held earlier than any listed): a queued TLP that takes one starts
   * no earlier than that. At most the credits held.
   */
  private readonly landedAt = [new NumberRing(), new NumberRing(), new NumberRing()];
  /** Set by `creditedPrefix` in a burst run: each covered constituent's earliest start by its credit, and the ledger entries that covers. */
  private prefixTimes: Float64Array | null = null;
  /** What prefixTimes views: read by the transmit that follows at once, never kept. */
  private prefixScratch = new Float64Array(64);
  private prefixBorrows = 0;
  private prefixLanded = 0;
  /** What the last `creditedPrefix` returned. */
  private prefixCount = 0;
  private updateInFlight = false;
  /** When the UpdateFC in flight (updateInFlight) reaches this transmitter, ps. */
  private updateLandsPs = -Infinity;
  /**
   * Burst granularity only: when the UpdateFC in flight reaches this transmitter, if no event was
   * scheduled for it (-1 otherwise). An update that reaches a transmitter with nothing queued only
   * adds to its credits, so it is applied when next looked at (`settleCredits`) instead of by an
   * event: the same credits at the same time, and ~15% fewer events per MiB. A TLP that must wait
   * for credits while it is in flight gives it its event (`enqueue`). Per-TLP runs schedule every
   * update, as the full-reference fixture pins.
   */
  private creditsDuePs = -1;
  /** TLPs waiting for credits, per class, with the order they were queued in (for the oldest-first drain). */
  readonly queues: Ring<Tlp>[] = [new Ring(), new Ring(), new Ring()];
  /** TLPs in each class's queue, counting a burst's constituents (what `txQueueTlps` bounds). */
  private readonly queuedTlps = [0, 0, 0];
  private readonly queueSeqs: Ring<number>[] = [new Ring(), new Ring(), new Ring()];
  private queueSeq = 0;
  /** TLPs on the wire and their wire bytes, oldest first. */
  private readonly inFlight = new Ring<Tlp>();
  private readonly inFlightWire = new Ring<number>();
  rxBytesSinceAck = 0;
  readonly counters = newCounters();
  /** 1 while TLPs wait in this direction's transmit queues (for credits, or behind a posted TLP that does). */
  private readonly creditWait: LevelTimer;
  /** Non-posted requests (reads) waiting in the transmit queue, over time. */
  private readonly readsQueued: LevelTimer;
  /** Time non-posted requests, once sent, waited for the wire behind TLPs committed before them, summed. */
  private readWireWaitPs = 0;
  reverse!: Direction;
  wantReady = false;
  /**
   * Burst granularity: when each place a drain freed in a class's transmit queue came free (the credit
   * time its constituent left with), for the owner that was refused (`takeRoomTimes`): per-TLP's owner
   * hands over its next TLP at each such time, where the burst run's does so at the drain's event.
   * Cleared once the owner has heard (`ready`): at most a drain's constituents.
   */
  private readonly roomAt = [new NumberRing(), new NumberRing(), new NumberRing()];

  constructor(
    private readonly link: PcieLink,
    readonly from: PciePort,
    readonly to: PciePort,
    credits: FcCredits,
  ) {
    this.creditWait = new LevelTimer(link.scheduler);
    this.readsQueued = new LevelTimer(link.scheduler);
    this.credits = Float64Array.of(credits.postedHeaders, credits.postedDataBytes, credits.nonPostedHeaders, Infinity, credits.completionHeaders, credits.completionDataBytes);
  }

  canQueue(kind: TlpKind): boolean {
    const c = classIndex(kind);
    return this.queuedTlps[c] < this.link.params.txQueueTlps;
  }

  /**
   * Takes the first constituents of `tlp` that per-TLP would have taken: those the credits cover (if
   * it may go now), then as many as the class's transmit queue has room for. Returns how many; the
   * rest (`sliceBurst(tlp, taken, tlp.count)`) stays the caller's. A plain TLP is `send`.
   */
  offer(tlp: Tlp, readyWhenFreed = false): number {
    if (tlp.count === 1 && !readyWhenFreed) return this.send(tlp) ? 1 : 0;
    this.settleCredits();
    const c = classIndex(tlp.kind);
    const room = this.link.params.txQueueTlps - this.queuedTlps[c];
    const mayGoNow = this.queues[c].length === 0 && (c === 0 || this.queues[0].length === 0);
    const credited = mayGoNow ? this.creditedPrefix(tlp, c) : 0;
    const take = Math.min(tlp.count, credited + (room > 0 ? room : 0));
    if (take < tlp.count) this.wantReady = true; // the rest was refused: the owner hears when there is room again
    if (take === 0) return 0;
    const t = take === tlp.count ? tlp : sliceBurst(tlp, 0, take);
    if (readyWhenFreed) this.readyWhenFreed(t, c, tlp.count);
    return this.send(t) ? take : 0;
  }

  /**
   * Burst granularity: the constituents an owner hands over after a refusal are ready when per-TLP's
   * owner would have handed each over, as the places a drain freed came free (the rest: now). The
   * times of as many places as the burst had constituents are consumed.
   */
  private readyWhenFreed(t: Tlp, c: number, wanted: number): void {
    const freedAt = this.takeRoom(c, t.count);
    if (freedAt === null) return;
    const m = freedAt.length;
    const ready = new Float64Array(t.count);
    ready.set(freedAt);
    if (m < t.count) ready.fill(this.link.scheduler.now(), m);
    const room = this.roomAt[c];
    room.drop(Math.min(wanted - m, room.length));
    // Not before each was ready (a completion before its data was read).
    const own = t.readyPs;
    if (own !== null) for (let i = 0; i < t.count; i++) if (own[i] > ready[i]) ready[i] = own[i];
    t.readyPs = ready;
  }

  /**
   * How many of a burst's (or a plain TLP's) first constituents the class's credits cover now. In a
   * burst run also the ledger entries whose time has come (`prefixBorrows` of them) and each covered
   * constituent's earliest start by when its credit came (`prefixTimes`, -Infinity: held long before).
   */
  private creditedPrefix(tlp: Tlp, c: number): number {
    let h = this.credits[2 * c];
    let d = this.credits[2 * c + 1];
    const n = tlp.count;
    const ledgered = this.keepsLedger(c);
    if (!ledgered || h - this.landedAt[c].length >= n) {
      // Per-TLP runs, and bursts the credits held since before any listed arrival cover (no times to take).
      let k = 0;
      while (k < n && h >= 1 && d >= partBytes(tlp, k)) {
        h -= 1;
        d -= partBytes(tlp, k);
        k++;
      }
      if (k === n || !ledgered) {
        this.prefixTimes = null;
        return (this.prefixCount = k);
      }
      h = this.credits[2 * c];
      d = this.credits[2 * c + 1];
    }
    const now = this.link.scheduler.now();
    const atR = this.ledgerAt[c];
    const byR = this.ledgerBytes[c];
    const landed = this.landedAt[c];
    if (this.prefixScratch.length < n) this.prefixScratch = new Float64Array(Math.max(n, 2 * this.prefixScratch.length));
    const times = this.prefixScratch;
    let old = h - landed.length; // real credits held since before anything listed in landedAt
    let li = 0;
    let j = 0;
    let borrowedAt = -Infinity;
    let jCovered = 0;
    let k = 0;
    for (; k < n; k++) {
      const need = partBytes(tlp, k);
      while ((h < 1 || d < need) && j < atR.length && atR.at(j) <= now) {
        h += 1;
        d += byR.at(j);
        const at = atR.at(j);
        if (at > borrowedAt) borrowedAt = at;
        j++;
      }
      if (h < 1 || d < need) {
        j = jCovered;
        break;
      }
      jCovered = j;
      // Which credit it takes: one held long since, then those real updates brought in order, then borrowed.
      let t: number;
      if (old >= 1) {
        t = -Infinity;
        old--;
      } else if (li < landed.length) t = landed.at(li++);
      else t = borrowedAt;
      times[k] = t;
      h -= 1;
      d -= need;
    }
    this.prefixTimes = k > 0 ? times : null;
    this.prefixBorrows = j;
    this.prefixLanded = li;
    return (this.prefixCount = k);
  }

  /** Commits what `creditedPrefix` planned for the first `k` constituents: landed credits used, ledger entries borrowed. */
  private takePlannedCredits(c: number, k: number): Float64Array | number {
    const times = this.prefixTimes;
    this.prefixTimes = null;
    if (times === null) return -Infinity;
    this.landedAt[c].drop(this.prefixLanded);
    this.ledgerAt[c].drop(this.prefixBorrows);
    this.ledgerBytes[c].drop(this.prefixBorrows);
    this.borrowed[c] += this.prefixBorrows;
    return times.subarray(0, k);
  }

  send(tlp: Tlp): boolean {
    this.settleCredits();
    const c = classIndex(tlp.kind);
    const dataBytes = tlp.data ? tlp.data.length : 0;
    const q = this.queues[c];
    // Posted requests may pass everything; others must not pass an older posted request (PCIe ordering).
    const mayGoNow = q.length === 0 && (c === 0 || this.queues[0].length === 0);
    const k = mayGoNow ? this.creditedPrefix(tlp, c) : 0;
    if (k > 0) {
      // A burst goes as far as its credits do, as per-TLP's would; the rest waits in the queue.
      const notBefore = this.takePlannedCredits(c, k);
      if (k === tlp.count) {
        this.transmit(tlp, c, dataBytes, notBefore);
        return true;
      }
      const head = sliceBurst(tlp, 0, k);
      this.transmit(head, c, head.data ? head.data.length : 0, notBefore);
      this.enqueue(sliceBurst(tlp, k, tlp.count), c);
      return true;
    }
    if (this.queuedTlps[c] >= this.link.params.txQueueTlps) {
      this.wantReady = true;
      return false;
    }
    this.enqueue(tlp, c);
    return true;
  }

  /** Puts a TLP (or a burst, counting its constituents) in its class's transmit queue to wait for credits. */
  private enqueue(tlp: Tlp, c: number): void {
    const q = this.queues[c];
    // A burst that waits keeps the time it was handed over: its constituents were ready then.
    // At burst granularity a plain TLP keeps it too: it may then go when its credits came, which can
    // be before the event that drains it (a CQE queued behind a write burst goes right after its last
    // constituent, as per-TLP's does), and so it travels on as a burst of one.
    if (tlp.readyPs === null && (tlp.count > 1 || this.from.burstBytes > 0)) tlp.readyPs = new Float64Array(tlp.count).fill(this.link.scheduler.now());
    this.counters.creditStalls++;
    q.push(tlp);
    this.queuedTlps[c] += tlp.count;
    this.queueSeqs[c].push(this.queueSeq++);
    this.creditWait.set(1);
    if (c === 1) this.readsQueued.set(this.queuedTlps[1]);
    if (this.creditsDuePs >= 0) {
      // An update applied lazily is on its way: the waiting TLP needs its arrival as an event.
      this.link.scheduler.schedule(this.creditsDuePs - this.link.scheduler.now(), this.creditsArrived);
      this.creditsDuePs = -1;
    }
    this.reverse.flushCreditsFor(this);
  }

  /** Applies an update in flight without an event (creditsDuePs) once its time has come. */
  settleCredits(): void {
    const lands = this.creditsDuePs;
    if (lands < 0 || this.link.scheduler.now() < lands) return;
    this.creditsDuePs = -1;
    this.updateInFlight = false;
    for (let i = 0; i < 6; i++) this.credits[i] += this.returning[i];
    this.landed(this.returning, lands);
  }

  /** Commits a TLP to the wire; a burst's constituents start no earlier than `notBeforePs` (when its credits came). */
  private transmit(tlp: Tlp, c: number, dataBytes: number, notBeforePs: number | Float64Array = -Infinity): void {
    if (isBurst(tlp)) return this.transmitBurst(tlp, c, dataBytes, notBeforePs);
    this.credits[2 * c] -= 1;
    this.credits[2 * c + 1] -= dataBytes;
    const sched = this.link.scheduler;
    const wire = headerBytes(tlp) + dataBytes + TLP_FRAMING_BYTES;
    const now = sched.now();
    const dur = Math.ceil(wire * this.link.psPerByte);
    const start = this.stEndPs.length === 0 ? (this.busyUntilPs > now ? this.busyUntilPs : now) : this.placeTlp(now, this.busyUntilPs, dur);
    this.busyUntilPs = start + dur;
    if (c === 1) this.readWireWaitPs += start - now;
    const k = this.counters;
    k.tlps++;
    k.payloadBytes += dataBytes;
    k.wireBytes += wire;
    k.busyPs += dur;
    switch (tlp.kind) {
      case 'MWr':
        k.MWr++;
        k.MWrPayloadBytes += dataBytes;
        break;
      case 'CplD':
        k.CplD++;
        k.CplDPayloadBytes += dataBytes;
        break;
      case 'MRd':
        k.MRd++;
        break;
      case 'Cpl':
        k.Cpl++;
        break;
      default:
        k.Cfg++;
    }
    sched.schedule(this.busyUntilPs + this.link.latencyPs - now, this.arriveNext); // before the push: it throws on a bad delay
    this.inFlight.push(tlp);
    this.inFlightWire.push(wire);
  }

  /**
   * A burst: its constituents, served one after another exactly as per-TLP serves a flow that has the
   * wire to itself (start = max(ready, busyUntil), possibly before now: serialization is analytic),
   * in one event at the last one's arrival, none before `notBeforePs` (a burst that waited in the
   * queue starts when its credits came). Its credits cover it: `send`, `offer` and `drain` chop a
   * burst where the credits run out, as per-TLP's constituents would stop there.
   */
  private transmitBurst(tlp: Tlp, c: number, dataBytes: number, notBeforePs: number | Float64Array): void {
    const n = tlp.count;
    this.credits[2 * c] -= n;
    this.credits[2 * c + 1] -= dataBytes;
    const sched = this.link.scheduler;
    const now = sched.now();
    const ready = tlp.readyPs;
    const arrivals = new Float64Array(n);
    const k = this.counters;
    let busy = this.busyUntilPs;
    let off = 0;
    let wireTotal = 0;
    for (let i = 0; i < n; i++) {
      const bytes = partBytes(tlp, i);
      const wire = partHeaderBytes(tlp, off) + bytes + TLP_FRAMING_BYTES;
      const r0 = ready ? ready[i] : now;
      const nb = typeof notBeforePs === 'number' ? notBeforePs : notBeforePs[i];
      const r = r0 > nb ? r0 : nb;
      const dur = Math.ceil(wire * this.link.psPerByte);
      const start = this.stEndPs.length === 0 ? (busy > r ? busy : r) : this.placeTlp(r, busy, dur);
      busy = start + dur;
      arrivals[i] = busy + this.link.latencyPs;
      wireTotal += wire;
      k.busyPs += dur;
      off += bytes;
    }
    this.busyUntilPs = busy;
    k.tlps += n;
    k.bursts++;
    k.payloadBytes += dataBytes;
    k.wireBytes += wireTotal;
    if (tlp.kind === 'MWr') {
      k.MWr += n;
      k.MWrPayloadBytes += dataBytes;
    } else if (tlp.kind === 'CplD') {
      k.CplD += n;
      k.CplDPayloadBytes += dataBytes;
    } else if (tlp.kind === 'MRd') k.MRd += n;
    else if (tlp.kind === 'Cpl') k.Cpl += n;
    else k.Cfg += n;
    const last = arrivals[n - 1];
    sched.schedule(last > now ? last - now : 0, this.arriveNext);
    tlp.readyPs = arrivals;
    this.inFlight.push(tlp);
    this.inFlightWire.push(wireTotal);
  }

  /** A burst arrived whole: the receiver's ACK DLLPs go out per constituent, at each one's arrival. */
  private arriveBurst(tlp: Tlp): void {
    const arrivals = tlp.readyPs!;
    const interval = this.link.ackIntervalBytes;
    let off = 0;
    for (let i = 0; i < tlp.count; i++) {
      const bytes = partBytes(tlp, i);
      this.rxBytesSinceAck += partHeaderBytes(tlp, off) + bytes + TLP_FRAMING_BYTES;
      off += bytes;
      if (this.rxBytesSinceAck >= interval) {
        this.rxBytesSinceAck -= interval;
        this.reverse.sendDllp(arrivals[i]);
      }
    }
    this.to.deliver(tlp);
  }

  /** The arrival event of the oldest TLP on the wire. */
  private readonly arriveNext = (): void => {
    const tlp = this.inFlight.shift()!;
    const wire = this.inFlightWire.shift()!;
    if (tlp.readyPs !== null) return this.arriveBurst(tlp);
    // The receiver acknowledges TLP traffic with ACK DLLPs in the reverse direction.
    this.rxBytesSinceAck += wire;
    if (this.rxBytesSinceAck >= this.link.ackIntervalBytes) {
      this.rxBytesSinceAck -= this.link.ackIntervalBytes;
      this.reverse.sendDllp();
    }
    this.to.deliver(tlp);
  };

  /** Occupies the wire with one DLLP (ACK or UpdateFC), after whatever is already committed. */
  sendDllp(atPs = this.link.scheduler.now()): number {
    const start = this.busyUntilPs > atPs ? this.busyUntilPs : atPs;
    const dur = Math.ceil(DLLP_BYTES * this.link.psPerByte);
    this.counters.dllps++;
    this.counters.wireBytes += DLLP_BYTES;
    this.counters.busyPs += dur;
    if (this.from.burstBytes === 0) return (this.busyUntilPs = start + dur);
    // Burst granularity: the DLLP joins the last stretch if that is still on the wire at its time, else
    // starts one; TLPs handed over before it may still pass it (placeTlp).
    const n = this.stEndPs.length;
    if (n > 0 && this.stEndPs[n - 1] >= atPs) {
      if (atPs < this.stAtPs[n - 1]) this.stAtPs[n - 1] = atPs;
      return (this.stEndPs[n - 1] += dur);
    }
    if (n >= MAX_DLLP_STRETCHES) this.settleStretches(1);
    const after = n > 0 && this.stEndPs[n - 1] > this.busyUntilPs ? this.stEndPs[n - 1] : this.busyUntilPs;
    const begin = after > atPs ? after : atPs;
    this.stStartPs.push(begin);
    this.stEndPs.push(begin + dur);
    this.stAtPs.push(atPs);
    this.stUpdate.push(null);
    return begin + dur;
  }

  /** The `k` oldest stretches join what is committed: nothing passes them any more. */
  private settleStretches(k: number): void {
    for (let i = 0; i < k; i++) {
      const end = this.stEndPs.shift()!;
      if (end > this.busyUntilPs) this.busyUntilPs = end;
      this.stStartPs.shift();
      this.stAtPs.shift();
      this.stUpdate.shift();
    }
  }

  /**
   * Burst granularity: where a TLP of `durPs` on the wire, ready at `readyPs`, starts: after the TLPs
   * committed before it (`busyPs`) and the stretches of DLLPs sent before it was ready, which then
   * join what is committed; in front of the later stretches, pushed back as far as it and each other
   * need (an UpdateFC in one that has not landed lands that much later; one that has landed keeps
   * its credits, a difference the stated bound covers).
   */
  private placeTlp(readyPs: number, busyPs: number, durPs: number): number {
    let start = busyPs > readyPs ? busyPs : readyPs;
    const at = this.stAtPs;
    // The common case: ready before every stretch and done before the first begins.
    if (at[0] > readyPs && start + durPs <= this.stStartPs[0]) return start;
    let k = 0;
    while (k < at.length && at[k] <= readyPs) {
      if (this.stEndPs[k] > start) start = this.stEndPs[k];
      k++;
    }
    if (k > 0) this.settleStretches(k);
    let end = start + durPs;
    for (let j = 0; j < this.stStartPs.length && this.stStartPs[j] < end; j++) {
      const shift = end - this.stStartPs[j];
      this.stStartPs[j] += shift;
      this.stEndPs[j] += shift;
      const u = this.stUpdate[j];
      if (u !== null && u.updateInFlight) u.delayUpdate(shift);
      end = this.stEndPs[j];
    }
    return start;
  }

  /** The UpdateFC on its way to this transmitter was pushed back on the reverse wire by `shiftPs` (placeTlp). */
  delayUpdate(shiftPs: number): void {
    this.updateLandsPs += shiftPs;
    if (this.creditsDuePs >= 0) this.creditsDuePs += shiftPs;
  }

  /**
   * Burst granularity: the ledger entries for credits the receiver just freed (`tlp`'s constituents),
   * each with when per-TLP's transmitter would have had it back: a burst's constituents in the
   * quarter-batched tranches per-TLP's receiver would have returned as it freed each (`freed`, from
   * `freedTimes`), one update in flight at a time, each one
   * DLLP and the wire's latency on its way; the rest of the last tranche, and a plain TLP, when the
   * real update lands (Infinity).
   */
  private noteLedger(tlp: Tlp, c: number, freed: Float64Array | null): void {
    const atR = this.ledgerAt[c];
    const byR = this.ledgerBytes[c];
    const n = tlp.count;
    for (let i = 0; i < n; i++) byR.push(partBytes(tlp, i));
    if (freed === null || n === 1) {
      for (let i = 0; i < n; i++) atR.push(Infinity);
      return;
    }
    const loop = Math.ceil(DLLP_BYTES * this.link.psPerByte) + this.link.latencyPs;
    const quarter = this.link.releaseBatchHeaders;
    let pending = this.pendingRelease[2 * c];
    let first = 0;
    // One update in flight at a time: a tranche complete while one is on its way goes when it lands.
    let free = this.updateInFlight ? this.updateLandsPs : -Infinity;
    for (let i = 0; i < n; i++) {
      if (pending + (i - first + 1) >= quarter) {
        const at = (freed[i] > free ? freed[i] : free) + loop;
        free = at;
        for (let m = first; m <= i; m++) atR.push(at);
        first = i + 1;
        pending = 0;
      }
    }
    for (let m = first; m < n; m++) atR.push(Infinity);
  }

  /** A real update brought `h` credits of class c: the borrowed ones first, then ledger entries, whose times go to landedAt. */
  private reconcile(c: number, h: number, landsPs: number): void {
    while (h > 0 && this.borrowed[c] > 0) {
      this.borrowed[c]--;
      h--;
    }
    const atR = this.ledgerAt[c];
    const landed = this.landedAt[c];
    while (h > 0 && atR.length > 0) {
      const at = atR.shift();
      this.ledgerBytes[c].shift();
      landed.push(at < landsPs ? at : landsPs);
      h--;
    }
    while (landed.length > 0 && landed.length > this.credits[2 * c]) landed.shift(); // never more than the credits held
  }

  /** After real credits landed (creditsArrived, settleCredits): the ledger of each class that keeps one. */
  private landed(returned: Float64Array, landsPs: number): void {
    for (let c = 0; c < 3; c++) if (returned[2 * c] > 0 && this.keepsLedger(c)) this.reconcile(c, returned[2 * c], landsPs);
  }

  /** Whether class c keeps a credit ledger: at burst granularity, when its header credits are finite. */
  private keepsLedger(c: number): boolean {
    return this.from.burstBytes > 0 && Number.isFinite(this.credits[2 * c]);
  }

  /** The receiver (the port this direction delivers to) freed a TLP's buffer space. */
  release(tlp: Tlp, freedPs: Float64Array | null = null): void {
    const c = classIndex(tlp.kind);
    if (freedPs !== null && freedPs.length !== tlp.count) throw new RangeError(`PCIe port ${this.to.name}: ${freedPs.length} release times for a burst of ${tlp.count}`);
    const ledger = this.keepsLedger(c);
    const freed = tlp.count > 1 || ledger ? this.freedTimes(tlp, freedPs) : null;
    if (tlp.count > 1) this.releaseBurstUpdates(c, tlp.count, freed);
    if (ledger) this.noteLedger(tlp, c, freed);
    this.pendingRelease[2 * c] += tlp.count;
    this.pendingRelease[2 * c + 1] += tlp.data ? tlp.data.length : 0;
    // Batch UpdateFC DLLPs: return credits when a quarter of a class's headers is pending or the sender waits.
    const quarter = this.link.releaseBatchHeaders;
    if (this.pendingRelease[2 * c] >= quarter || this.queues[c].length > 0 || this.queues[0].length > 0) this.reverse.flushCreditsFor(this);
  }

  /**
   * A burst's release is one UpdateFC where per-TLP releases its constituents one by one (at
   * `freed`, from `freedTimes`; null: no times to go by, so only the quarters are counted), each
   * returning credits when a quarter of the class's headers is pending or the sender waits, unless an
   * update is still in flight: the UpdateFC DLLPs per-TLP would have sent before the last occupy the
   * reverse wire here at those times (counted and timed; the credits travel in the one that follows,
   * and the ledger times them). Whether the sender waits is taken as it is now.
   */
  private releaseBurstUpdates(c: number, n: number, freed: Float64Array | null): void {
    const quarter = this.link.releaseBatchHeaders;
    let pending = this.pendingRelease[2 * c];
    if (freed === null) {
      const extra = Math.floor((pending + n) / quarter) - 1;
      for (let i = 0; i < extra; i++) this.reverse.sendDllp();
      return;
    }
    const waits = this.queues[c].length > 0 || this.queues[0].length > 0;
    const now = this.link.scheduler.now();
    const loop = Math.ceil(DLLP_BYTES * this.link.psPerByte) + this.link.latencyPs;
    let free = this.updateInFlight ? this.updateLandsPs : -Infinity;
    for (let i = 0; i < n - 1; i++) {
      pending++;
      const at = freed[i];
      if (at >= free && (pending >= quarter || waits)) {
        this.reverse.sendDllp(at < now ? at : now);
        free = at + loop;
        pending = 0;
      }
    }
  }

  /**
   * When per-TLP's receiver freed each constituent of a burst it released now: as its owner says
   * (`freedPs`), else as each arrived with the receiver's delay as for the last; null when the burst
   * carries no arrival times (a plain TLP handed over without them).
   */
  private freedTimes(tlp: Tlp, freedPs: Float64Array | null): Float64Array | null {
    const arrivals = tlp.readyPs;
    const n = tlp.count;
    if (arrivals === null || arrivals.length !== n) return null;
    if (freedPs !== null) return freedPs;
    const lag = this.link.scheduler.now() - arrivals[n - 1];
    if (lag <= 0) return arrivals;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = arrivals[i] + lag;
    return out;
  }

  /** Sends an UpdateFC from `dir`'s receiver back to its transmitter (called on the reverse direction, so dir.reverse === this). */
  flushCreditsFor(dir: Direction): void {
    dir.settleCredits();
    if (dir.updateInFlight) return;
    const p = dir.pendingRelease;
    if (p[0] + p[2] + p[4] === 0) return;
    const r = dir.returning;
    for (let i = 0; i < 6; i++) {
      r[i] = p[i];
      p[i] = 0;
    }
    dir.updateInFlight = true;
    const lands = this.sendDllp() + this.link.latencyPs;
    const st = this.stUpdate.length;
    if (st > 0) this.stUpdate[st - 1] = dir; // its DLLP is in the last stretch (burst granularity)
    dir.updateLandsPs = lands;
    const sched = this.link.scheduler;
    if (dir.from.burstBytes > 0 && dir.queued() === 0) dir.creditsDuePs = lands;
    else sched.schedule(lands - sched.now(), dir.creditsArrived);
  }

  /** The UpdateFC sent by flushCreditsFor reached this direction's transmitter. */
  private readonly creditsArrived = (): void => {
    const now = this.link.scheduler.now();
    if (this.updateLandsPs > now) {
      // TLPs handed over before it went ahead of its DLLP after it was sent (placeTlp): it lands later.
      this.link.scheduler.schedule(this.updateLandsPs - now, this.creditsArrived);
      return;
    }
    this.updateInFlight = false;
    for (let i = 0; i < 6; i++) this.credits[i] += this.returning[i];
    this.landed(this.returning, this.link.scheduler.now());
    this.drain();
    // Credits freed while this update was in flight go out now if the sender still waits.
    if (this.queued() > 0) this.reverse.flushCreditsFor(this);
  };

  /** Sends queued TLPs, oldest first among classes with credits, respecting posted-first ordering. */
  drain(): void {
    const queues = this.queues;
    const seqs = this.queueSeqs;
    for (;;) {
      const best = this.oldestCredited();
      if (best < 0) break;
      const head = queues[best].peek()!;
      const k = this.prefixCount;
      const times = this.takePlannedCredits(best, k);
      let tlp = head;
      if (k < head.count) {
        // As far as the credits go; the rest stays at the head of the queue.
        tlp = sliceBurst(head, 0, k);
        queues[best].setHead(sliceBurst(head, k, head.count));
      } else {
        queues[best].shift();
        seqs[best].shift();
      }
      this.queuedTlps[best] -= k;
      if (best === 1) this.readsQueued.set(this.queuedTlps[1]);
      const starts = this.waitedStarts(times);
      if (this.wantReady && this.from.burstBytes > 0) {
        const room = this.roomAt[best];
        for (let i = 0; i < k; i++) room.push(typeof starts === 'number' ? starts : starts[i]);
      }
      this.transmit(tlp, best, tlp.data ? tlp.data.length : 0, starts);
    }
    if (this.queued() === 0) this.creditWait.set(0);
    const limit = this.link.params.txQueueTlps;
    const n = this.queuedTlps;
    if (this.wantReady && n[0] < limit && n[1] < limit && n[2] < limit) {
      this.wantReady = false;
      this.from.ready();
      for (let c = 0; c < 3; c++) this.roomAt[c].drop(this.roomAt[c].length);
    }
  }

  /**
   * The class whose queue head was queued first among those its credits cover and PCIe ordering lets
   * go (a non-posted or completion TLP does not pass an older posted one), or -1: classes are tried
   * oldest first, so `creditedPrefix` last ran for the one returned (`prefixCount` and the plan).
   */
  private oldestCredited(): number {
    const queues = this.queues;
    const seqs = this.queueSeqs;
    let tried = 0;
    for (;;) {
      let c0 = -1;
      let s0 = Infinity;
      for (let c = 0; c < 3; c++) {
        if (tried & (1 << c) || queues[c].length === 0) continue;
        const s = seqs[c].peek()!;
        if (c !== 0 && queues[0].length > 0 && seqs[0].peek()! < s) continue;
        if (s < s0) {
          s0 = s;
          c0 = c;
        }
      }
      if (c0 < 0) return -1;
      tried |= 1 << c0;
      if (this.creditedPrefix(queues[c0].peek()!, c0) > 0) return c0;
    }
  }

  /** The credits this transmitter holds now (an update applied lazily counted once its time has come). */
  creditsNow(): Float64Array {
    this.settleCredits();
    return this.credits;
  }

  /**
   * A queued burst's constituents start no earlier than their credits came (`times`, from
   * creditedPrefix), nor than now if their credit was held before anything listed (they waited for
   * something else: an older posted TLP).
   */
  private waitedStarts(times: Float64Array | number): Float64Array | number {
    const now = this.link.scheduler.now();
    if (typeof times === 'number') return now;
    for (let i = 0; i < times.length; i++) if (times[i] === -Infinity) times[i] = now;
    return times;
  }

  /**
   * The times the first places a drain freed in `kind`'s queue came free, at most `n`, consumed (null
   * if it freed none). Places beyond those listed are free now.
   */
  takeRoomTimes(kind: TlpKind, n: number): Float64Array | null {
    return this.takeRoom(classIndex(kind), n);
  }

  /** `takeRoomTimes` by class index. */
  private takeRoom(c: number, n: number): Float64Array | null {
    const room = this.roomAt[c];
    if (room.length === 0) return null;
    const out = new Float64Array(Math.min(n, room.length));
    for (let i = 0; i < out.length; i++) out[i] = room.shift();
    return out;
  }

  queued(): number {
    return this.queuedTlps[0] + this.queuedTlps[1] + this.queuedTlps[2];
  }

  /**
   * The counters with creditWaitPs (time at least one TLP waited in the transmit queues, for credits
   * or behind a posted TLP that did) and readQueuedPs (the time non-posted requests, reads, waited
   * there and then for the wire behind TLPs committed before them, summed over them).
   */
  snapshot(): LinkDirectionCounters {
    return { ...this.counters, creditWaitPs: this.creditWait.readPs(), readQueuedPs: this.readsQueued.readPs() + this.readWireWaitPs };
  }

  /** Serialization backlog, credits, the UpdateFC in flight, queued and in-flight TLPs (arrival times are the scheduler's). */
  digest(d: StateDigest): void {
    this.settleCredits(); // an update whose time has come digests as applied, as its event would have left it
    d.until(this.busyUntilPs);
    d.num(this.stEndPs.length);
    for (let i = 0; i < this.stEndPs.length; i++) {
      d.until(this.stStartPs[i]);
      d.until(this.stEndPs[i]);
      d.until(this.stAtPs[i]);
    }
    for (let i = 0; i < 6; i++) {
      d.num(this.credits[i]);
      d.num(this.pendingRelease[i]);
      d.num(this.updateInFlight ? this.returning[i] : 0);
    }
    d.flag(this.updateInFlight);
    if (this.creditsDuePs >= 0) d.until(this.creditsDuePs);
    else d.num(-1);
    d.num(this.rxBytesSinceAck);
    d.flag(this.wantReady);
    for (let c = 0; c < 3; c++) {
      const q = this.queues[c];
      d.num(q.length);
      for (let i = 0; i < q.length; i++) {
        digestTlp(d, q.at(i)!);
        d.num(this.queueSeq - this.queueSeqs[c].at(i)!); // order across classes, as an age
      }
    }
    d.num(this.inFlight.length);
    for (let i = 0; i < this.inFlight.length; i++) {
      digestTlp(d, this.inFlight.at(i)!);
      d.num(this.inFlightWire.at(i)!);
    }
    d.name(this.arriveNext, `${this.from.name}>arrive`);
    d.name(this.creditsArrived, `${this.from.name}>credits`);
  }
}

/** One end of a PCIe link, owned by the component plugged into it. */
export class PciePort {
  receiver: TlpReceiver | null = null;
  /** Set by the link: this end's transmit direction and its receive direction. */
  tx!: Direction;
  rx!: Direction;
  /**
   * Burst granularity of the run (pcie/burst.ts), set by the builder: what a DMA engine, root complex
   * or endpoint core on this port may send as one burst, bytes (0: one TLP at a time). Devices never read it.
   */
  burstBytes = 0;

  constructor(readonly name: string) {}

  attach(receiver: TlpReceiver): void {
    this.receiver = receiver;
  }

  /** Queues a TLP for transmission; false when the class's transmit queue is full (wait for portReady). */
  send(tlp: Tlp): boolean {
    return this.tx.send(tlp);
  }

  /**
   * Queues the first constituents of a burst that per-TLP would have queued; returns how many
   * (Direction.offer). `readyWhenFreed`: the burst is what was refused before, and each constituent
   * taken is ready when its place came free.
   */
  offer(tlp: Tlp, readyWhenFreed = false): number {
    return this.tx.offer(tlp, readyWhenFreed);
  }

  canSend(kind: TlpKind): boolean {
    return this.tx.canQueue(kind);
  }

  /**
   * The owner has consumed a received TLP: its buffer credits go back to the sender. A burst's owner
   * may say when it freed each constituent (`freedPs`, ps; else as each arrived).
   */
  release(tlp: Tlp, freedPs: Float64Array | null = null): void {
    this.rx.release(tlp, freedPs);
  }

  /** Burst granularity: when the places the last drain freed in `kind`'s transmit queue came free, at most `n` (Direction.takeRoomTimes). */
  takeRoomTimes(kind: TlpKind, n: number): Float64Array | null {
    return this.tx.takeRoomTimes(kind, n);
  }

  /** TLPs waiting in this end's transmit queue for credits. */
  queuedTlps(): number {
    return this.tx.queued();
  }

  /** @internal */
  deliver(tlp: Tlp): void {
    if (!this.receiver) throw new Error(`PCIe port ${this.name} received a TLP but nothing is attached`);
    this.receiver.receiveTlp(tlp, this);
  }

  /** @internal */
  ready(): void {
    this.receiver?.portReady?.(this);
  }

  counters(): LinkDirectionCounters {
    return this.tx.counters;
  }
}

/**
 * A full-duplex PCIe link between an upstream port (toward the root complex) and a downstream port.
 * Models line rate after encoding, per-TLP framing/sequence/LCRC, TLP headers, ACK and UpdateFC DLLPs,
 * SKP ordered sets, flow-control credits and a bounded transmit queue per class.
 */
export class PcieLink {
  readonly up: PciePort;
  readonly down: PciePort;
  readonly psPerByte: number;
  readonly latencyPs: number;
  readonly ackIntervalBytes: number;
  readonly releaseBatchHeaders: number;
  readonly downstream: Direction;
  readonly upstream: Direction;

  constructor(
    readonly name: string,
    readonly scheduler: Scheduler,
    readonly params: PcieLinkParams,
    /** Credits advertised by the upstream end's receiver and by the downstream end's receiver. */
    upCredits: FcCredits,
    downCredits: FcCredits,
    trace?: TraceRegistry,
  ) {
    this.psPerByte = 1e12 / (linkBytesPerSec(params.generation, params.lanes) * (1 - SKP_OVERHEAD_FRACTION));
    this.latencyPs = Math.round(params.latencyNs * 1000);
    this.ackIntervalBytes = ackIntervalBytes(params.mpsBytes, params.lanes);
    this.releaseBatchHeaders = Math.max(1, Math.floor(Math.min(upCredits.postedHeaders, downCredits.postedHeaders) / 4));
    this.up = new PciePort(`${name}.up`);
    this.down = new PciePort(`${name}.down`);
    this.downstream = new Direction(this, this.up, this.down, downCredits);
    this.upstream = new Direction(this, this.down, this.up, upCredits);
    this.downstream.reverse = this.upstream;
    this.upstream.reverse = this.downstream;
    this.up.tx = this.downstream;
    this.up.rx = this.upstream;
    this.down.tx = this.upstream;
    this.down.rx = this.downstream;
    if (trace) {
      trace.register(`${name}.downstream`, () => this.downstream.snapshot());
      trace.register(`${name}.upstream`, () => this.upstream.snapshot());
      // The credits each sender holds now (views: trace-events, the web view); finite classes only.
      trace.registerGauge(`${name}.downstream`, () => creditLevels(this.downstream.creditsNow()));
      trace.registerGauge(`${name}.upstream`, () => creditLevels(this.upstream.creditsNow()));
    }
  }

  digest(d: StateDigest): void {
    d.section(this.name);
    this.downstream.digest(d);
    this.upstream.digest(d);
  }

  /** Time to serialize `bytes` on this link, ps (for docs and tests). */
  wireTimePs(bytes: number): number {
    return Math.ceil(bytes * this.psPerByte);
  }
}

/** A sender's credits now, by class (headers in TLPs, data in bytes), leaving out the infinite ones. */
function creditLevels(c: Float64Array): CounterSet {
  const names = ['postedHeaders', 'postedDataBytes', 'nonPostedHeaders', 'nonPostedDataBytes', 'completionHeaders', 'completionDataBytes'];
  const out: CounterSet = {};
  names.forEach((n, i) => {
    if (Number.isFinite(c[i])) out[n] = c[i];
  });
  return out;
}
