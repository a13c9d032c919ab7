import type { StateDigest } from '../core/digest.js';
import { Ring } from '../core/ring.js';
import { constituent } from '../pcie/burst.js';
import { ExpEtherPdu, type NakRange } from './pdu.js';

export interface ReliableParams {
  /** Unacknowledged frames a sender may have outstanding to one peer (the window; also each peer's share of the receive buffer). */
  windowFrames: number;
  /** Backstop: a frame unacknowledged this long after it was last sent is resent (a lost NAK, a lost tail frame), ns. */
  retransmitTimeoutNs: number;
  /** A receiver acknowledges at least every this many in-order frames... */
  ackEveryFrames: number;
  /** ...and no later than this after the first unacknowledged one, ns. */
  ackDelayNs: number;
}

/**
 * Sender half of a per-peer reliable, in-order link (layer 2, as ExpEther does it) with selective
 * repeat: sequence numbers, a bounded window of unacknowledged frames kept for retransmission,
 * cumulative acknowledgements; a NAK resends only the frames it names, and the retransmission timer
 * resends only frames unacknowledged for longer than the timeout.
 */
export class ReliableSender {
  private nextSeq = 0;
  /**
   * Unacknowledged PDUs in sequence order, one entry per sequence number (a ring: no compaction
   * copies). At most windowFrames. Their sequence numbers are consecutive, ending at nextSeq - 1. A
   * burst's frames (burst granularity) share one entry object, the burst's PDU, with each frame's
   * index into it in `unackedIndex`; the frame a retransmission needs is made from it then (`frameAt`).
   */
  private readonly unacked = new Ring<ExpEtherPdu>();
  private readonly unackedIndex = new Ring<number>();
  /**
   * When each unacknowledged PDU was last sent, ps, in slot seq % windowFrames: the unacknowledged
   * sequence numbers are consecutive and fewer than the window, so slots never collide. Resending one
   * from the middle restamps it, so the oldest is not always the first.
   */
  private readonly sentAtPs: Float64Array;
  /**
   * Live only (`stampWith`): the same, as a wall stamp of the scheduler's (`Scheduler.timeoutStamp`),
   * so the retransmission timer can count a frame's timeout from when it really left. Null under virtual time.
   */
  private sentStamp: Float64Array | null = null;
  private stamp: (() => number) | null = null;
  retransmissions = 0;
  /**
   * Live round-trip measurement (RFC 6298 with Karn's rule): one frame at a time is timed, from its
   * send stamp (`sentStampOf`), until acknowledged; a resend of it cancels the measurement. -1: none
   * timed. Unused under virtual time (the simulator's timeout is fixed).
   */
  timedSeq = -1;
  /**
   * After a timeout: the last sequence number outstanding then, until acknowledged (-1: none). An ACK
   * that advances but stays below it shows the next frame missing too (a lost tail), which is resent
   * at once: one round trip per such frame rather than one timeout (NewReno's partial ACK, RFC 6582).
   */
  recoverSeq = -1;
  /**
   * The frame the timeout or the last partial ACK resent (-1: none). Only an ACK that stops exactly at
   * it shows the next frame missing: after a spurious timeout the original frames' ACKs advance in
   * steps short of `recoverSeq` too, and resending on each of them would resend the window frame by frame.
   */
  recoverResent = -1;

  constructor(readonly windowFrames: number) {
    this.sentAtPs = new Float64Array(windowFrames);
  }

  /** Live: stamps every send with `stamp` (see sentStamp). */
  stampWith(stamp: () => number): void {
    this.stamp = stamp;
    this.sentStamp = new Float64Array(this.windowFrames);
  }

  /** The wall stamp of the first unacknowledged PDU's last send; undefined under virtual time or with none. */
  firstSentStamp(): number | undefined {
    return this.sentStamp && this.unacked.length > 0 ? this.sentStampOf(this.seqAt(0)) : undefined;
  }

  /** Live (`stampWith`): the wall stamp of unacknowledged `seq`'s last send. */
  sentStampOf(seq: number): number {
    return this.sentStamp![seq % this.windowFrames];
  }

  inFlight(): number {
    return this.unacked.length;
  }

  canSend(): boolean {
    return this.inFlight() < this.windowFrames;
  }

  /** Assigns the next sequence number and keeps the PDU until acknowledged. */
  track(pdu: ExpEtherPdu, nowPs: number): void {
    if (!this.canSend()) throw new Error('reliable sender: window full');
    pdu.seq = this.nextSeq++;
    this.unacked.push(pdu);
    this.unackedIndex.push(0);
    this.sentAtPs[pdu.seq % this.windowFrames] = nowPs;
    if (this.sentStamp) this.sentStamp[pdu.seq % this.windowFrames] = this.stamp!();
  }

  /**
   * Assigns `count` consecutive sequence numbers to the frames of a burst whose PDU (its TLP a burst
   * of `count` constituents) is `pdu`, which gets the first; keeps it until each is acknowledged.
   */
  trackBurst(pdu: ExpEtherPdu, count: number, nowPs: number): void {
    if (this.inFlight() + count > this.windowFrames) throw new Error('reliable sender: window full');
    pdu.seq = this.nextSeq;
    const stamp = this.sentStamp ? this.stamp!() : 0;
    for (let i = 0; i < count; i++) {
      this.unacked.push(pdu);
      this.unackedIndex.push(i);
      this.sentAtPs[(this.nextSeq + i) % this.windowFrames] = nowPs;
      if (this.sentStamp) this.sentStamp[(this.nextSeq + i) % this.windowFrames] = stamp;
    }
    this.nextSeq += count;
  }

  /** Sequence number of the i-th unacknowledged frame. */
  private seqAt(i: number): number {
    return this.nextSeq - this.unacked.length + i;
  }

  /** The i-th unacknowledged frame's PDU as per-TLP granularity sent it (a burst's frame made from the burst). */
  private frameAt(i: number): ExpEtherPdu {
    const pdu = this.unacked.at(i)!;
    const k = this.unackedIndex.at(i)!;
    if (pdu.tlp === null || (pdu.tlp.count === 1 && pdu.tlp.readyPs === null && k === 0)) return pdu;
    return new ExpEtherPdu('tlp', pdu.seq + k, -1, constituent(pdu.tlp, k), null);
  }

  /** The next sequence number: the base that makes this flow's sequence numbers relative in digests. */
  nextSequence(): number {
    return this.nextSeq;
  }

  /**
   * Window occupancy and the unacknowledged PDUs by relative sequence number. Their send times only
   * matter to the retransmission timer; while every one is younger than half the timeout they are
   * summarised as 'young' (a lossless fabric acknowledges within microseconds), otherwise the state
   * is marked unique so no period is ever claimed through a pending retransmission.
   */
  digest(d: StateDigest, rtoPs: number): void {
    d.num(this.unacked.length);
    for (let i = 0; i < this.unacked.length; i++) d.num(this.seqAt(i) - this.nextSeq);
    const oldest = this.oldestSentPs();
    if (oldest >= 0 && d.nowPs - oldest >= rtoPs / 2) d.str(`old@${d.nowPs}`);
    d.num(this.retransmissions);
    d.num(this.recoverSeq < 0 ? -1e9 : this.recoverSeq - this.nextSeq);
    d.num(this.recoverResent < 0 ? -1e9 : this.recoverResent - this.nextSeq);
  }

  /** Drops every PDU with seq <= ack; returns how many were released. */
  acknowledge(ack: number): number {
    let n = 0;
    while (this.unacked.length > 0 && this.seqAt(0) <= ack) {
      this.unacked.shift();
      this.unackedIndex.shift();
      n++;
    }
    return n;
  }

  /** Time the longest-unsent unacknowledged PDU was last sent, or -1 (a scan of at most the window). */
  oldestSentPs(): number {
    let oldest = -1;
    for (let i = 0; i < this.unacked.length; i++) {
      const t = this.sentAtPs[this.seqAt(i) % this.windowFrames];
      if (oldest < 0 || t < oldest) oldest = t;
    }
    return oldest;
  }

  /** Time the first unacknowledged PDU was last sent, or -1. */
  firstSentPs(): number {
    return this.unacked.length > 0 ? this.sentAtPs[this.seqAt(0) % this.windowFrames] : -1;
  }

  /** The first unacknowledged PDU, marked sent now (the timer backstop's and a partial ACK's resend), or null. */
  takeFirst(nowPs: number): ExpEtherPdu | null {
    return this.unacked.length > 0 ? this.resending(this.frameAt(0), nowPs) : null;
  }

  /** The last sequence number sent (-1 before any). */
  lastSent(): number {
    return this.nextSeq - 1;
  }

  /** The PDUs last sent at or before `cutoffPs`, in order, marked sent now. */
  takeOlderThan(cutoffPs: number, nowPs: number): ExpEtherPdu[] {
    const out: ExpEtherPdu[] = [];
    for (let i = 0; i < this.unacked.length; i++) {
      if (this.sentAtPs[this.seqAt(i) % this.windowFrames] <= cutoffPs) out.push(this.resending(this.frameAt(i), nowPs));
    }
    return out;
  }

  /**
   * A NAK: the still unacknowledged PDUs it names, in order, marked sent now. Nothing else is resent.
   * A frame timed for its round trip that lies behind the gap is no longer timed: its ACK waits for
   * the repair, so it would time the repair, not the round trip (Karn's rule, extended to a gap).
   */
  takeNaked(nak: NakRange, nowPs: number): ExpEtherPdu[] {
    if (this.timedSeq >= nak.first) this.timedSeq = -1;
    const out: ExpEtherPdu[] = [];
    const n = this.unacked.length;
    if (n === 0) return out;
    // Unacknowledged sequence numbers are consecutive: index = seq - first one's.
    const base = this.seqAt(0);
    const from = Math.max(0, nak.first - base);
    const to = Math.min(n - 1, nak.last - base);
    for (let i = from; i <= to; i++) out.push(this.resending(this.frameAt(i), nowPs));
    return out;
  }

  private resending(pdu: ExpEtherPdu, nowPs: number): ExpEtherPdu {
    this.sentAtPs[pdu.seq % this.windowFrames] = nowPs;
    if (this.sentStamp) this.sentStamp[pdu.seq % this.windowFrames] = this.stamp!();
    this.retransmissions++;
    if (pdu.seq === this.timedSeq) this.timedSeq = -1; // Karn: a resent frame's ACK measures nothing
    return pdu;
  }
}

/** The most a NAK's repeat interval backs off (x its base: 64 x a quarter of the retransmission timeout). */
const NAK_BACKOFF_MAX = 64;

/** What a receiver does with an arriving reliable frame. */
export type Arrival = 'next' | 'duplicate' | 'held' | 'beyond';

/**
 * Receiver half, selective repeat: the next expected frame goes on at once; a later one within the
 * window waits in a reorder buffer until the gap before it fills. A gap gets a NAK naming it once the
 * frames that arrived with the one revealing it have been seen (`nakGaps`, the bridge's gap check at
 * the same instant), and the NAK is repeated while the gap stays (the bridge's NAK timer, `dueNaks`).
 *
 * The reorder buffer is bounded by the window: a sender has at most windowFrames frames beyond the
 * last one acknowledged, and this receiver acknowledges only what has left its buffers, so every
 * frame worth holding has seq < expected + windowFrames, and held frames plus this peer's frames in
 * the bridge's egress buffer together stay within the window (the window is still the receive
 * buffer: layer-2 flow control holds).
 */
export class ReliableReceiver {
  /** Next sequence number expected. */
  expected = 0;
  /** Last sequence number whose content left the receive buffer: what the cumulative ACK reports. */
  delivered = -1;
  /** In-order frames received since the last ACK sent. */
  unackedCount = 0;
  ackTimerArmed = false;
  /** The reorder buffer: frames in (expected, expected + windowFrames), in slot seq % windowFrames. */
  private readonly held: (ExpEtherPdu | null)[];
  heldCount = 0;
  /** Highest sequence number held; below `expected` when nothing is. */
  private highestHeld = -1;
  /** For each missing sequence number in [expected, highestHeld] (slot seq % windowFrames): when it was last NAK'd, ps. -1 otherwise. */
  private readonly nakAtPs: Float64Array;
  /** Per slot as nakAtPs: 1 once the NAK was repeated (Karn's rule: its repair then measures nothing). */
  private readonly nakRepeated: Uint8Array;
  nakTimerArmed = false;
  /** Smoothed time from a NAK to the frame it named arriving, and its mean deviation (RFC 6298), ps; srtt -1 before the first. */
  repairSrttPs = -1;
  repairRttvarPs = 0;
  /**
   * Doubles each time the NAK timer repeats a NAK, back to 1 at the next repair measured (RFC 6298
   * section 5.5's backoff). Without it, a first repeat interval shorter than the real repair time
   * (a resent frame queued behind a large window's frames) repeats every NAK, Karn's rule then never
   * measures a repair, and the repeats resend whole gaps over and over. At most NAK_BACKOFF_MAX.
   */
  nakBackoff = 1;
  /**
   * Live only (the scheduler's `timeoutStamp` and `roundTrip`): each NAK'd frame's wall stamp, so its
   * repair is timed in wall time as well, which sizes the NAK repeat's wall deadline. Null under
   * virtual time, where `repairSrttPs` alone times repairs.
   */
  wallRepairs: { stamp(): number; repaired(stamp: number): void } | null = null;
  /** Per slot as nakAtPs: the wall stamp of its NAK (live only). */
  private readonly nakStamp: Float64Array;
  /** The highest sequence number `nakGaps` has looked at: every missing one up to it is NAK'd. */
  private nakScanned = -1;

  constructor(readonly windowFrames: number) {
    this.held = Array.from({ length: windowFrames }, () => null);
    this.nakAtPs = new Float64Array(windowFrames).fill(-1);
    this.nakRepeated = new Uint8Array(windowFrames);
    this.nakStamp = new Float64Array(windowFrames);
  }

  classify(seq: number): Arrival {
    if (seq === this.expected) return 'next';
    if (seq < this.expected) return 'duplicate';
    if (seq >= this.expected + this.windowFrames) return 'beyond';
    return this.held[seq % this.windowFrames] ? 'duplicate' : 'held';
  }

  /** The cumulative ACK value to send: the last sequence number delivered onward. */
  cumulativeAck(): number {
    return this.delivered;
  }

  /** Whether a gap stays open (something is held, so some frame before it is missing). */
  hasGap(): boolean {
    return this.heldCount > 0;
  }

  /**
   * The next expected frame arrived (it is passed on by the caller): notes a repair if it was NAK'd
   * and moves on to the next sequence number.
   */
  acceptNext(nowPs: number): void {
    this.arrived(this.expected, nowPs);
    this.expected++;
  }

  /**
   * The held frame that is now next, removed from the reorder buffer, or null. Call acceptNext for
   * it, once per frame: a burst held whole (`holdBurst`) comes back whole, its PDU's TLP a burst of
   * `count` frames.
   */
  takeHeld(): ExpEtherPdu | null {
    const slot = this.expected % this.windowFrames;
    const pdu = this.held[slot];
    if (!pdu) return null;
    const n = pdu.tlp ? pdu.tlp.count : 1;
    for (let i = 0; i < n; i++) this.held[(this.expected + i) % this.windowFrames] = null;
    this.heldCount -= n;
    return pdu;
  }

  /** Whether the `count` frames from `first` on may be held as one burst: all ahead of a gap, within the window, none held yet. */
  canHoldBurst(first: number, count: number): boolean {
    if (first <= this.expected || first + count > this.expected + this.windowFrames) return false;
    for (let s = first; s < first + count; s++) if (this.held[s % this.windowFrames] !== null) return false;
    return true;
  }

  /**
   * Holds a burst's frames whole (after `canHoldBurst`): every slot they take holds the burst's PDU,
   * so each counts as held (a copy arriving later is a duplicate) and `takeHeld` returns the burst
   * once, when the gap before it fills. Returns whether it reveals a gap, as `hold` does.
   */
  holdBurst(pdu: ExpEtherPdu, count: number, nowPs: number): boolean {
    const first = pdu.seq;
    const last = first + count - 1;
    for (let s = first; s <= last; s++) {
      this.arrived(s, nowPs);
      this.held[s % this.windowFrames] = pdu;
    }
    this.heldCount += count;
    const from = Math.max(this.expected, this.highestHeld + 1);
    if (last < from) return false;
    this.highestHeld = last;
    return first > from;
  }

  /**
   * Holds a frame classified 'held'. Returns the gap it reveals (the frames between the highest one
   * seen so far and this one), or null when it lands inside a gap already seen. The gap is NAK'd by
   * `nakGaps`, once the frames that arrived with this one have been seen: a frame merely overtaken
   * by its neighbour in the same delivery then fills the gap first and costs no NAK and no resend.
   */
  hold(pdu: ExpEtherPdu, nowPs: number): NakRange | null {
    const seq = pdu.seq;
    this.arrived(seq, nowPs);
    this.held[seq % this.windowFrames] = pdu;
    this.heldCount++;
    const from = Math.max(this.expected, this.highestHeld + 1);
    if (seq < from) return null;
    this.highestHeld = seq;
    if (seq === from) return null;
    return { first: from, last: seq - 1 };
  }

  /**
   * The missing frames never NAK'd yet, as ranges, each stamped NAK'd now (the first NAK of each
   * gap; the NAK timer repeats them, `dueNaks`). Empty when the gaps filled meanwhile.
   */
  nakGaps(nowPs: number): NakRange[] {
    const ranges: NakRange[] = [];
    let open: NakRange | null = null;
    let stamp = -1;
    // Every missing frame up to nakScanned was NAK'd by an earlier call: scan only what is new.
    const from = Math.max(this.expected, this.nakScanned + 1);
    this.nakScanned = Math.max(this.nakScanned, this.highestHeld - 1);
    for (let s = from; s < this.highestHeld; s++) {
      const slot = s % this.windowFrames;
      if (this.held[slot] !== null || this.nakAtPs[slot] >= 0) continue;
      if (stamp < 0) stamp = this.wallRepairs ? this.wallRepairs.stamp() : 0;
      this.nakAtPs[slot] = nowPs;
      this.nakStamp[slot] = stamp;
      if (open && open.last === s - 1) open.last = s;
      else ranges.push((open = { first: s, last: s }));
    }
    return ranges;
  }

  /** A frame arrived: if it was NAK'd, the time since is a repair-time sample. */
  private arrived(seq: number, nowPs: number): void {
    const slot = seq % this.windowFrames;
    const at = this.nakAtPs[slot];
    if (at < 0) return;
    this.nakAtPs[slot] = -1;
    if (this.nakRepeated[slot]) {
      this.nakRepeated[slot] = 0;
      return;
    }
    const sample = nowPs - at;
    this.wallRepairs?.repaired(this.nakStamp[slot]);
    this.nakBackoff = 1;
    if (this.repairSrttPs < 0) {
      this.repairSrttPs = sample;
      this.repairRttvarPs = sample / 2;
    } else {
      this.repairRttvarPs = Math.round(0.75 * this.repairRttvarPs + 0.25 * Math.abs(this.repairSrttPs - sample));
      this.repairSrttPs = Math.round(0.875 * this.repairSrttPs + 0.125 * sample);
    }
  }

  /**
   * How long a NAK is given before it is repeated, ps: the repair time as RFC 6298 sizes a timeout
   * (srtt + 4 rttvar), or `initialPs` before any repair was measured.
   */
  nakRepeatPs(initialPs: number): number {
    const base = this.repairSrttPs < 0 ? initialPs : Math.max(1, Math.ceil(this.repairSrttPs + 4 * this.repairRttvarPs));
    return base * this.nakBackoff;
  }

  /**
   * The NAK timer: the missing ranges last NAK'd at or before `cutoffPs`, restamped `nowPs` (each
   * range is NAK'd again), and the earliest stamp left (-1 for none) to re-arm the timer by.
   */
  dueNaks(cutoffPs: number, nowPs: number): { ranges: NakRange[]; nextAtPs: number } {
    const ranges: NakRange[] = [];
    let nextAtPs = -1;
    let open: NakRange | null = null;
    for (let s = this.expected; s < this.highestHeld; s++) {
      const slot = s % this.windowFrames;
      const at = this.nakAtPs[slot];
      const due = this.held[slot] === null && at >= 0 && at <= cutoffPs;
      if (due) {
        this.nakAtPs[slot] = nowPs;
        this.nakRepeated[slot] = 1;
        if (open && open.last === s - 1) open.last = s;
        else ranges.push((open = { first: s, last: s }));
      } else if (this.held[slot] === null && at >= 0 && (nextAtPs < 0 || at < nextAtPs)) nextAtPs = at;
    }
    if (ranges.length > 0 && (nextAtPs < 0 || nowPs < nextAtPs)) nextAtPs = nowPs;
    if (ranges.length > 0) this.nakBackoff = Math.min(this.nakBackoff * 2, NAK_BACKOFF_MAX);
    return { ranges, nextAtPs };
  }

  /** Reorder buffer and NAK state, sequence numbers relative to `base` (see ExpEtherBridge.digest). */
  digest(d: StateDigest, base: number): void {
    d.num(this.expected - base);
    d.num(this.delivered - base);
    d.num(this.unackedCount);
    d.flag(this.ackTimerArmed);
    d.num(this.heldCount);
    d.flag(this.nakTimerArmed);
    d.num(this.repairSrttPs);
    d.num(this.repairRttvarPs);
    d.num(this.nakBackoff);
    // A reorder buffer or a NAK pending is repair in progress: never part of a steady period.
    if (this.heldCount > 0 || this.nakTimerArmed) d.str(`repair@${d.nowPs}`);
  }
}
