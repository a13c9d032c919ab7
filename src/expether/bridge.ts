import type { StateDigest } from '../core/digest.js';
import { LevelTimer } from '../core/level-timer.js';
import { Ring } from '../core/ring.js';
import type { Callback, Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import { Frame } from '../ethernet/frame.js';
import type { EthPort, FrameReceiver } from '../ethernet/port.js';
import type { PciePort, TlpReceiver } from '../pcie/link.js';
import { CPL_STATUS, digestTlp, Tlp } from '../pcie/tlp.js';
import { constituent, encodedParts, sliceBurst } from '../pcie/burst.js';
import { encodedLength } from '../pcie/tlp-codec.js';
import { EXPETHER_ETHERTYPE, EXPETHER_HEADER_BYTES, ExpEtherPdu, type NakRange, type PortRoute } from './pdu.js';
import { ReliableReceiver, ReliableSender, type ReliableParams } from './reliable.js';
import { constituentFrames } from './burst-frames.js';

export interface BridgeParams extends ReliableParams {
  /** Encapsulation plus decapsulation latency of one bridge traversal pair (PCIe -> frame -> PCIe), ns. */
  bridgeLatencyNs: number;
}

export interface BridgeCounters {
  [k: string]: number;
  tlpsToEthernet: number;
  tlpsFromEthernet: number;
  framesSent: number;
  acksSent: number;
  retransmittedFrames: number;
  /** Of those, the frames the retransmission timer resent (the backstop; the rest were NAKed). */
  timeoutResentFrames: number;
  duplicateFrames: number;
  /** Frames beyond the reorder buffer (seq >= expected + window; a correct sender never sends one): dropped. */
  outOfOrderFrames: number;
  /** Frames that arrived ahead of a gap and waited in the reorder buffer. */
  heldOutOfOrder: number;
  /** NAKs this bridge sent (first for a gap, and repeats), and received. */
  naksSent: number;
  naksReceived: number;
  receiveBufferDrops: number;
  unsupportedRequests: number;
  /** Frames of another ExpEther group (802.1Q VLAN id not this bridge's group id) that reached this bridge: dropped. */
  otherGroupFrames: number;
}

/** Where a TLP from the PCIe side goes: a peer bridge, handled locally, or answered Unsupported Request. */
export type RouteDecision = { to: 'peer'; mac: number; tlp: Tlp } | { to: 'local' } | { to: 'unsupported' };

/** The decisions without data, shared (route runs once per TLP; these need no allocation). */
export const ROUTE_LOCAL: RouteDecision = { to: 'local' };
export const ROUTE_UNSUPPORTED: RouteDecision = { to: 'unsupported' };

export class Peer {
  readonly sender: ReliableSender;
  readonly receiver: ReliableReceiver;
  retransmitTimerArmed = false;
  /** When the retransmission and NAK timers were last armed, ps: only what was pending then can have waited a whole timeout. */
  retransmitArmedAtPs = 0;
  nakArmedAtPs = 0;
  /** A routing table waiting for a full window to open (management PDUs are reliable too). */
  pendingRoutes: PortRoute[] | null = null;
  /** Timer callbacks, made once per peer rather than once per arming (set by the bridge). */
  ackTimeout: Callback = () => {};
  retransmitTimeout: Callback = () => {};
  nakTimeout: Callback = () => {};
  /** NAKs the gaps seen in this instant's arrivals, after all of them (`ReliableReceiver.nakGaps`); armed while one is pending. */
  gapCheck: Callback = () => {};
  gapCheckArmed = false;
  /**
   * Burst granularity's window timeline (bridge.ts "Bursts"): when the ACK covering each of the last
   * `windowFrames` sequence numbers arrived (slot seq % window), through `ackedThrough`; and the due
   * time of the ACK delay timer as bursts computed it (-1: none).
   */
  readonly ackAtPs: Float64Array;
  ackedThrough = -1;
  ackDuePs = -1;
  constructor(
    readonly mac: number,
    windowFrames: number,
  ) {
    this.sender = new ReliableSender(windowFrames);
    this.receiver = new ReliableReceiver(windowFrames);
    this.ackAtPs = new Float64Array(windowFrames);
  }
}

/**
 * What both ExpEther bridges share: TLP <-> frame encapsulation, per-peer reliable in-order delivery
 * with a bounded window, bounded buffers in both directions with back-pressure into PCIe flow control.
 * Subclasses decide routing (`route`) and what a bridge answers itself (`handleLocal`).
 */
export abstract class ExpEtherBridge implements TlpReceiver, FrameReceiver {
  protected readonly peers = new Map<number, Peer>();
  /** The same peers in an array: a bridge has a handful, and a scan beats hashing a 48-bit MAC. */
  private readonly peerList: Peer[] = [];
  /**
   * TLPs from PCIe waiting for a peer's window or Ethernet buffer room (bounded by PCIe credits):
   * the TLP to send, the TLP to release on PCIe once sent (null for one the bridge made), the peer.
   * Parallel rings, so queueing allocates nothing.
   */
  private readonly ingressTlp = new Ring<Tlp>();
  private readonly ingressOriginal = new Ring<Tlp | null>();
  private readonly ingressMac = new Ring<number>();
  /**
   * TLPs from Ethernet waiting for the PCIe transmit queue, with the peer and sequence number of the
   * frame each came in (peer null: nothing to acknowledge). A frame is acknowledged only once its TLP
   * has left this buffer, so each peer has at most a window here: the buffer is bounded by
   * window x peers and a lossless network never drops (ExpEther's L2 flow control).
   */
  private readonly egressTlp = new Ring<Tlp>();
  private readonly egressPeer = new Ring<Peer | null>();
  private readonly egressSeq = new Ring<number>();
  /** The one 'peer' decision object `peerRoute` fills in (read by receiveTlp before the next route). */
  private readonly peerDecision = { to: 'peer' as const, mac: 0, tlp: null as unknown as Tlp };
  /** 1 while the oldest TLP from PCIe waits for its peer's window, or for room in the Ethernet output buffer. */
  private readonly windowWait: LevelTimer;
  private readonly ethBufferWait: LevelTimer;
  /** Read requests waiting in the two buffers (ingress and egress), over time. */
  private readonly readsQueued: LevelTimer;
  private readsQueuedCount = 0;
  /** The retry `waitForRoom` armed (at most one pending). */
  private roomWakeArmed = false;
  private readonly roomWake = (): void => {
    this.roomWakeArmed = false;
    this.drainIngress();
  };
  private readonly latencyPs: number;
  private readonly rtoPs: number;
  private readonly ackDelayPs: number;
  readonly counters: BridgeCounters = {
    tlpsToEthernet: 0,
    tlpsFromEthernet: 0,
    framesSent: 0,
    acksSent: 0,
    retransmittedFrames: 0,
    timeoutResentFrames: 0,
    duplicateFrames: 0,
    outOfOrderFrames: 0,
    receiveBufferDrops: 0,
    unsupportedRequests: 0,
    otherGroupFrames: 0,
    heldOutOfOrder: 0,
    naksSent: 0,
    naksReceived: 0,
  };

  constructor(
    readonly name: string,
    protected readonly scheduler: Scheduler,
    readonly mac: number,
    readonly groupId: number,
    readonly params: BridgeParams,
    readonly eth: EthPort,
    readonly pcie: PciePort,
    trace?: TraceRegistry,
  ) {
    this.latencyPs = Math.round(params.bridgeLatencyNs * 1000);
    this.rtoPs = Math.round(params.retransmitTimeoutNs * 1000);
    this.ackDelayPs = Math.round(params.ackDelayNs * 1000);
    this.windowWait = new LevelTimer(scheduler);
    this.ethBufferWait = new LevelTimer(scheduler);
    this.readsQueued = new LevelTimer(scheduler);
    eth.owner = this;
    pcie.attach(this);
    // windowWaitPs, ethBufferWaitPs: time a TLP from PCIe waited for the ExpEther window, for the Ethernet
    // buffer; readQueuedPs: read requests waiting in the bridge's buffers x ps (the time they waited, summed).
    trace?.register(`bridge.${name}`, () => ({
      ...this.counters,
      windowWaitPs: this.windowWait.readPs(),
      ethBufferWaitPs: this.ethBufferWait.readPs(),
      readQueuedPs: this.readsQueued.readPs(),
    }));
    // The window in use now: unacknowledged frames to every peer (views: trace-events, the web view).
    trace?.registerGauge(`bridge.${name}`, () => ({ windowFrames: this.peerList.reduce((n, p) => n + p.sender.inFlight(), 0) }));
  }

  /** This bridge's next sequence number toward `mac` (the base of that flow's relative numbers). */
  sequenceBase(mac: number): number {
    return this.peer(mac)?.sender.nextSequence() ?? 0;
  }

  /** Whether `fn` is one of this bridge's retransmission timers (whose due time digests leave out, see ReliableSender.digest). */
  isRetransmitTimer(fn: Callback): boolean {
    for (const p of this.peerList) if (p.retransmitTimeout === fn) return true;
    return false;
  }

  /**
   * Buffers both ways and each peer's window and receive state; sequence numbers relative to the
   * sending bridge's next one (`base(from, to)`), so a state that differs only in how many frames
   * have gone before compares equal.
   */
  digest(d: StateDigest, base: (fromMac: number, toMac: number) => number): void {
    d.section(this.name);
    d.num(this.ingressTlp.length);
    for (let i = 0; i < this.ingressTlp.length; i++) {
      digestTlp(d, this.ingressTlp.at(i)!);
      d.flag(this.ingressOriginal.at(i) !== null);
      d.num(this.ingressMac.at(i)!);
    }
    d.num(this.egressTlp.length);
    for (let i = 0; i < this.egressTlp.length; i++) {
      digestTlp(d, this.egressTlp.at(i)!);
      const p = this.egressPeer.at(i);
      d.num(p ? p.mac : -1);
      d.num(p ? this.egressSeq.at(i)! - base(p.mac, this.mac) : 0);
    }
    d.flag(this.roomWakeArmed);
    d.name(this.roomWake, `${this.name}>room-wake`);
    for (const p of this.peerList) {
      d.num(p.mac);
      p.sender.digest(d, this.rtoPs);
      p.receiver.digest(d, base(p.mac, this.mac));
      d.flag(p.retransmitTimerArmed);
      d.flag(p.pendingRoutes !== null);
      d.name(p.ackTimeout, `${this.name}>ack-timer>${p.mac}`);
      d.name(p.retransmitTimeout, `${this.name}>rto-timer>${p.mac}`);
      d.name(p.nakTimeout, `${this.name}>nak-timer>${p.mac}`);
      d.flag(p.gapCheckArmed);
      d.name(p.gapCheck, `${this.name}>gap-check>${p.mac}`);
    }
  }

  addPeer(mac: number): void {
    if (this.peers.has(mac)) return;
    const peer = new Peer(mac, this.params.windowFrames);
    const r = peer.receiver;
    peer.ackTimeout = () => {
      r.ackTimerArmed = false;
      if (peer.ackDuePs > this.scheduler.now()) return this.armAckTimer(peer); // a burst moved it later
      peer.ackDuePs = -1;
      if (r.unackedCount > 0) this.sendAck(peer);
    };
    peer.retransmitTimeout = () => this.retransmitCheck(peer);
    peer.nakTimeout = () => this.nakCheck(peer);
    peer.gapCheck = () => {
      peer.gapCheckArmed = false;
      for (const gap of r.nakGaps(this.scheduler.now())) this.sendNak(peer, gap);
    };
    const sch = this.scheduler;
    // Live unpaced: NAK repairs timed in wall time too (Scheduler.timeoutStamp), for the NAK repeat's deadline.
    if (sch.timeoutStamp && sch.roundTrip) r.wallRepairs = { stamp: () => sch.timeoutStamp!(), repaired: (stamp) => sch.roundTrip!(stamp, 'repair') };
    // Live unpaced: sends stamped in wall time, so a frame's retransmission timeout counts from when it left.
    if (sch.timeoutStamp) peer.sender.stampWith(() => sch.timeoutStamp!());
    this.peers.set(mac, peer);
    this.peerList.push(peer);
  }

  private peer(mac: number): Peer | undefined {
    const list = this.peerList;
    for (let i = 0; i < list.length; i++) if (list[i].mac === mac) return list[i];
    return undefined;
  }

  /** A 'peer' route decision, valid until the next call (route's result is consumed at once). */
  protected peerRoute(mac: number, tlp: Tlp): RouteDecision {
    const d = this.peerDecision;
    d.mac = mac;
    d.tlp = tlp;
    return d;
  }

  /** Decides where a TLP that arrived from PCIe goes. */
  protected abstract route(tlp: Tlp): RouteDecision;
  /** Handles a TLP addressed to the bridge itself (its configuration space); returns a completion or null. */
  protected abstract handleLocal(tlp: Tlp): Tlp | null;
  /** Handles a management PDU (routes) from a peer. */
  protected onRoutes(_routes: PortRoute[], _from: number): void {}
  /** Rewrites a TLP that arrived from Ethernet before it goes onto PCIe (e.g. config type conversion); null to answer it here. */
  protected fromEthernet(tlp: Tlp, _fromMac: number): Tlp | null {
    return tlp;
  }

  // ---- PCIe side -------------------------------------------------------------------------------

  receiveTlp(tlp: Tlp, port: PciePort): void {
    const d = this.route(tlp);
    if (d.to === 'peer') {
      const mac = d.mac;
      const out = d.tlp;
      if (out.readyPs !== null) return this.receiveBurst(mac, out, port);
      if (this.ingressTlp.length === 0 && this.trySend(mac, out)) {
        port.release(tlp);
        return;
      }
      this.queueIngress(out, tlp, mac);
      return;
    }
    if (d.to === 'local') {
      port.release(tlp);
      const cpl = this.handleLocal(tlp);
      if (cpl) this.toPcie(cpl);
      return;
    }
    if (d.to === 'unsupported') {
      port.release(tlp);
      this.counters.unsupportedRequests++;
      if (tlp.kind !== 'MWr' && tlp.kind !== 'Cpl' && tlp.kind !== 'CplD') this.toPcie(Tlp.completion(tlp, this.completerId(), CPL_STATUS.UR, null, 0, 0));
    }
  }

  private queueIngress(tlp: Tlp, original: Tlp | null, mac: number): void {
    this.ingressTlp.push(tlp);
    this.ingressOriginal.push(original);
    this.ingressMac.push(mac);
    if (tlp.kind === 'MRd') this.countRead(tlp.count);
  }

  /** Trace only: read requests (a burst's constituents each) entered (+n) or left (-n) one of the bridge's buffers. */
  private countRead(d: number): void {
    this.readsQueuedCount += d;
    this.readsQueued.set(this.readsQueuedCount);
  }

  /** The bridge's own requester/completer id for completions it generates. */
  protected abstract completerId(): number;

  portReady(): void {
    this.drainEgress();
  }

  /** Sends a TLP toward PCIe, or buffers it; `peer`/`seq` say which received frame it came from. */
  protected toPcie(tlp: Tlp, peer: Peer | null = null, seq = -1): void {
    if (this.egressTlp.length === 0 && this.pcie.send(tlp)) {
      if (peer) this.delivered(peer, seq);
      return;
    }
    this.queueEgress(tlp, peer, seq);
  }

  /** A TLP from Ethernet (or made here: `peer` null) waits for the PCIe side, its read requests counted. */
  private queueEgress(tlp: Tlp, peer: Peer | null, seq: number): void {
    this.egressTlp.push(tlp);
    this.egressPeer.push(peer);
    this.egressSeq.push(seq);
    if (tlp.kind === 'MRd') this.countRead(tlp.count);
  }

  private drainEgress(): void {
    for (;;) {
      const head = this.egressTlp.peek();
      if (head === undefined) return;
      const arrived = head.readyPs; // a burst's arrival times here (sending replaces them with the link's)
      const kind = head.kind;
      const taken = this.pcie.offer(head);
      if (taken === 0) return;
      // Each frame left toward PCIe when the port had room for it (per-TLP's hands them over one by one as
      // places free), not before it arrived.
      const room = arrived !== null ? this.pcie.takeRoomTimes(kind, taken) : null;
      let left = arrived;
      if (arrived !== null && room !== null) {
        const now = this.scheduler.now();
        left = new Float64Array(taken);
        for (let i = 0; i < taken; i++) left[i] = Math.max(i < room.length ? room[i] : now, arrived[i]);
      }
      if (taken < head.count) {
        // Per-TLP's transmit queue took only these: the rest waits here, unacknowledged.
        const peer = this.egressPeer.peek()!;
        const seq = this.egressSeq.peek()!;
        this.egressTlp.setHead(sliceBurst(head, taken, head.count));
        this.egressSeq.setHead(seq + taken);
        if (head.kind === 'MRd') this.countRead(-taken);
        if (peer && left !== null) this.deliveredBurst(peer, seq, taken, left, room !== null);
        return;
      }
      if (head.kind === 'MRd') this.countRead(-head.count);
      this.egressTlp.shift();
      const peer = this.egressPeer.shift()!;
      const seq = this.egressSeq.shift()!;
      if (peer && left !== null) this.deliveredBurst(peer, seq, head.count, left, room !== null);
      else if (peer) this.delivered(peer, seq);
    }
  }

  /** A received frame's content has moved on: it may now be acknowledged. */
  private delivered(peer: Peer, seq: number): void {
    const r = peer.receiver;
    r.delivered = seq;
    r.unackedCount++;
    if (r.unackedCount >= this.params.ackEveryFrames) this.sendAck(peer);
    else if (!r.ackTimerArmed) {
      r.ackTimerArmed = true;
      peer.ackDuePs = this.scheduler.now() + this.ackDelayPs; // when it fires, for a burst delivered before then
      this.scheduler.schedule(this.ackDelayPs, peer.ackTimeout);
    }
  }

  private egressCapacity(): number {
    return this.params.windowFrames * Math.max(1, this.peers.size);
  }

  // ---- Ethernet side ---------------------------------------------------------------------------

  private trySend(mac: number, tlp: Tlp): boolean {
    const peer = this.peer(mac);
    if (!peer) throw new Error(`bridge ${this.name}: no peer ${mac.toString(16)}`);
    if (!peer.sender.canSend()) {
      this.waiting(1, 0);
      return false;
    }
    // The PDU's payloadBytes(), computed before making it: a TLP that must wait allocates nothing.
    const frameBytes = EXPETHER_HEADER_BYTES + encodedLength(tlp);
    if (!this.eth.hasRoom(frameBytes, this.latencyPs)) {
      this.waitForRoom(frameBytes);
      return false;
    }
    const pdu = new ExpEtherPdu('tlp', -1, -1, tlp, null);
    peer.sender.track(pdu, this.scheduler.now());
    this.timeRoundTrip(peer, pdu.seq);
    this.counters.tlpsToEthernet++;
    this.transmit(peer, pdu);
    this.armRetransmit(peer);
    return true;
  }

  /** Sends a reliable management PDU (bypasses the ingress queue; the window is checked by the caller). */
  protected sendRoutes(mac: number, routes: PortRoute[]): void {
    const peer = this.peers.get(mac)!;
    if (!peer.sender.canSend()) {
      // Only the latest table matters: it replaces any table still waiting for the window.
      peer.pendingRoutes = routes;
      return;
    }
    const pdu = new ExpEtherPdu('routes', -1, -1, null, routes);
    peer.sender.track(pdu, this.scheduler.now());
    this.transmit(peer, pdu);
    this.armRetransmit(peer);
  }

  private transmit(peer: Peer, pdu: ExpEtherPdu): void {
    // Piggyback the cumulative ACK for this peer.
    pdu.ack = peer.receiver.cumulativeAck();
    peer.receiver.unackedCount = 0;
    this.counters.framesSent++;
    const frame = new Frame(peer.mac, this.mac, this.groupId, EXPETHER_ETHERTYPE, pdu, pdu.payloadBytes());
    frame.readRequest = pdu.tlp !== null && pdu.tlp.kind === 'MRd';
    this.eth.send(frame, this.latencyPs);
  }

  private drainIngress(): void {
    while (this.ingressTlp.length > 0) {
      const head = this.ingressTlp.peek()!;
      let freed: Float64Array | null = null;
      if (head.readyPs !== null) {
        freed = this.drainBurst(head);
        if (freed === null) return;
      } else if (!this.trySend(this.ingressMac.peek()!, head)) return;
      const sent = this.ingressTlp.shift()!;
      if (sent.kind === 'MRd') this.countRead(-sent.count);
      this.ingressMac.shift();
      const original = this.ingressOriginal.shift();
      if (original) this.pcie.release(original, freed);
    }
    this.waiting(0, 0);
  }

  /**
   * The oldest TLP from PCIe found the Ethernet output buffer full: try again when the backlog has
   * drained enough for its frame. An ACK would also retry, but with nothing in flight (the buffer
   * full of this bridge's own ACKs and NAKs, say) none comes, and the queue would wait for ever.
   */
  private waitForRoom(payloadBytes: number): void {
    this.waiting(0, 1);
    if (this.roomWakeArmed) return;
    const inPs = this.eth.roomInPs(payloadBytes, this.latencyPs);
    if (!Number.isFinite(inPs)) throw new RangeError(`bridge ${this.name}: a ${payloadBytes} B frame can never fit port ${this.eth.name}'s ${this.eth.params.queueLimitBytes} B output buffer (raise its buffer)`);
    this.roomWakeArmed = true;
    this.scheduler.schedule(inPs, this.roomWake);
  }

  /** What the oldest TLP from PCIe waits for (trace only). */
  private waiting(window: number, ethBuffer: number): void {
    this.windowWait.set(window);
    this.ethBufferWait.set(ethBuffer);
  }

  private armRetransmit(peer: Peer): void {
    if (peer.retransmitTimerArmed) return;
    this.scheduleRetransmit(peer, this.rtoPs);
  }

  /** Arms the timer `delayPs` from now, or live, a wall timeout from `sinceStamp` (the first unacknowledged frame's send). */
  private scheduleRetransmit(peer: Peer, delayPs: number, sinceStamp?: number): void {
    peer.retransmitTimerArmed = true;
    peer.retransmitArmedAtPs = this.scheduler.now();
    this.scheduler.scheduleTimeout(delayPs, peer.retransmitTimeout, 'ack', sinceStamp);
  }

  /**
   * The retransmission timer, a backstop behind the NAKs: it recovers what no NAK can name (a lost
   * NAK or resend, a lost tail frame with nothing after it to reveal the gap, a lost ACK). When the
   * first unacknowledged frame has waited a whole timeout since it was last sent, it resends that one
   * frame only: the frames after it may well be in the receiver's reorder buffer, and the receiver
   * NAKs every gap it sees. ACKs that then advance short of what was outstanding resend the next
   * frame at once (`acknowledged`). Lossless, the first frame is always the oldest, so this is the
   * timer go-back-N had, which never fires.
   *
   * Only a frame sent before this timer was armed counts as old: under virtual time that is no limit
   * (the timer was armed at most a timeout ago), but live and unpaced a timeout also waits its wall
   * deadline while a node's simulated time may run far ahead of its peer's.
   */
  private retransmitCheck(peer: Peer): void {
    peer.retransmitTimerArmed = false;
    const s = peer.sender;
    const first = s.firstSentPs();
    if (first < 0) return;
    const now = this.scheduler.now();
    if (now - first >= this.rtoPs && first <= peer.retransmitArmedAtPs) {
      s.recoverSeq = s.lastSent();
      this.counters.timeoutResentFrames++;
      this.resendFirst(peer);
    }
    // Live, the wall timeout counts from the first frame's send, not from now: a frame sent just after
    // the timer was armed, and lost, would otherwise wait up to two timeouts.
    this.scheduleRetransmit(peer, Math.max(0, s.firstSentPs() + this.rtoPs - now), s.firstSentStamp());
  }

  /** Resends the first unacknowledged frame (the timeout's and a partial ACK's), noting it for the partial-ACK rule. */
  private resendFirst(peer: Peer): void {
    const pdu = peer.sender.takeFirst(this.scheduler.now())!;
    peer.sender.recoverResent = pdu.seq;
    this.resend(peer, [pdu]);
  }

  private resend(peer: Peer, pdus: ExpEtherPdu[]): void {
    this.counters.retransmittedFrames += pdus.length;
    for (const pdu of pdus) this.transmit(peer, pdu);
  }

  /**
   * Live only (the scheduler offers `timeoutStamp`): times one new frame at a time to its ACK, so
   * the scheduler can size timeouts' wall deadlines by the measured round trip. Under virtual time
   * the timeout is the fixed retransmitTimeoutNs and nothing is timed.
   */
  private timeRoundTrip(peer: Peer, seq: number): void {
    // Live, every send is stamped (`stampWith` at the peer's creation): the timed frame's is its start.
    if (!this.scheduler.timeoutStamp || peer.sender.timedSeq >= 0) return;
    peer.sender.timedSeq = seq;
  }

  receiveFrame(frame: Frame): void {
    const pdu = frame.payload as ExpEtherPdu;
    if (frame.etherType !== EXPETHER_ETHERTYPE) return;
    if (frame.vlan !== this.groupId) {
      // Group isolation: another group's frame (flooded by a switch, or addressed here) never gets in.
      this.counters.otherGroupFrames++;
      return;
    }
    if (frame.dst !== this.mac) return; // flooded within the group: for another bridge
    const peer = this.peer(frame.src);
    if (!peer) return; // not a member of this bridge's group
    if (frame.readyPs !== null) this.burstAckTimes(peer, pdu, frame.readyPs);
    if (pdu.ack >= 0) this.acknowledged(peer, pdu.ack);
    if (pdu.kind === 'ack') return;
    if (frame.parts !== null) return this.receiveBurstFrame(peer, frame, pdu, frame.readyPs!);
    if (pdu.kind === 'nak') {
      // Selective repeat: resend exactly the frames the NAK names that are still unacknowledged.
      this.counters.naksReceived++;
      this.resend(peer, peer.sender.takeNaked(pdu.nak!, this.scheduler.now()));
      return;
    }
    const r = peer.receiver;
    const cls = r.classify(pdu.seq);
    if (cls === 'duplicate') {
      this.counters.duplicateFrames++;
      if (pdu.seq < r.expected) this.sendAck(peer); // our ACK may have been lost: repeat it
      return;
    }
    if (cls === 'beyond') {
      this.counters.outOfOrderFrames++;
      return;
    }
    if (cls === 'held') {
      // Ahead of a gap: wait in the reorder buffer. A gap this frame reveals is NAK'd in this instant,
      // after the frames that arrived with it (a live datagram's, a burst's): one merely overtaken by
      // its neighbour arrives among them and is never NAK'd.
      this.counters.heldOutOfOrder++;
      if (r.hold(pdu, this.scheduler.now())) this.armGapCheck(peer);
      return;
    }
    if (pdu.tlp && this.egressTlp.length >= this.egressCapacity()) {
      this.counters.receiveBufferDrops++;
      return; // not acknowledged: the sender retransmits
    }
    this.accept(peer, pdu, frame.src);
    // The gap before the held frames may have closed: they follow in order, through the same path.
    // They fit: held frames and this peer's egress entries are all unacknowledged, so within its window.
    for (let held = r.takeHeld(); held !== null; held = r.takeHeld()) this.accept(peer, held, frame.src);
  }

  /** NAKs the gaps seen in this instant once all of its arrivals have been seen (ReliableReceiver.nakGaps). */
  private armGapCheck(peer: Peer): void {
    if (peer.gapCheckArmed) return;
    peer.gapCheckArmed = true;
    this.scheduler.schedule(0, peer.gapCheck);
  }

  /** A cumulative ACK from `peer` (piggybacked or bare): frees its window and reports a timed round trip. */
  private acknowledged(peer: Peer, ack: number): void {
    this.recordAckTimes(peer, ack, this.scheduler.now());
    const s = peer.sender;
    if (s.timedSeq >= 0 && ack >= s.timedSeq) {
      this.scheduler.roundTrip?.(s.sentStampOf(s.timedSeq)); // before `acknowledge`: the slot is still the timed frame's
      s.timedSeq = -1;
    }
    if (s.acknowledge(ack) > 0) {
      if (s.recoverSeq >= 0) {
        // After a timeout: an ACK that stops at the frame just resent means the next one is missing
        // too; resend it now. One that stops elsewhere short of recoverSeq is the original frames'
        // (a timeout that fired while they were under way) and resends nothing.
        if (ack >= s.recoverSeq) s.recoverSeq = -1;
        else if (ack === s.recoverResent) this.resendFirst(peer);
      }
      const routes = peer.pendingRoutes;
      if (routes) {
        peer.pendingRoutes = null;
        this.sendRoutes(peer.mac, routes);
      }
      this.drainIngress();
    }
  }

  /** The next expected frame (fresh or out of the reorder buffer) goes on: in order, acknowledged once delivered. */
  private accept(peer: Peer, pdu: ExpEtherPdu, fromMac: number): void {
    // A burst held whole in the reorder buffer: its frames go on now, as one burst.
    if (pdu.tlp !== null && pdu.tlp.count > 1) return this.deliverBurst(peer, pdu, new Float64Array(pdu.tlp.count).fill(this.scheduler.now()));
    peer.receiver.acceptNext(this.scheduler.now());
    if (pdu.routes) {
      this.onRoutes(pdu.routes, fromMac);
      this.delivered(peer, pdu.seq);
      return;
    }
    this.counters.tlpsFromEthernet++;
    const tlp = this.fromEthernet(pdu.tlp!, fromMac);
    if (tlp) this.toPcie(tlp, peer, pdu.seq);
    else this.delivered(peer, pdu.seq);
  }

  /** Sends a NAK for `gap` (with the cumulative ACK); the first arms the NAK timer, which repeats it while the gap stays. */
  private sendNak(peer: Peer, gap: NakRange): void {
    const pdu = new ExpEtherPdu('nak', -1, peer.receiver.cumulativeAck(), null, null, gap);
    peer.receiver.unackedCount = 0;
    this.counters.naksSent++;
    this.eth.send(new Frame(peer.mac, this.mac, this.groupId, EXPETHER_ETHERTYPE, pdu, pdu.payloadBytes()), this.latencyPs);
    if (!peer.receiver.nakTimerArmed) this.scheduleNakCheck(peer, this.nakRepeatPs(peer));
  }

  private scheduleNakCheck(peer: Peer, delayPs: number): void {
    peer.receiver.nakTimerArmed = true;
    peer.nakArmedAtPs = this.scheduler.now();
    this.scheduler.scheduleTimeout(delayPs, peer.nakTimeout, 'repair');
  }

  /** How long a NAK gets before it is repeated: the measured repair time, a quarter of the backstop timeout before one was measured. */
  private nakRepeatPs(peer: Peer): number {
    return peer.receiver.nakRepeatPs(Math.ceil(this.rtoPs / 4));
  }

  /**
   * The NAK timer: repeats the NAK of every gap still open a repair time after it was last NAK'd
   * (and, as for the retransmission timer, before this timer was armed).
   */
  private nakCheck(peer: Peer): void {
    const r = peer.receiver;
    r.nakTimerArmed = false;
    if (!r.hasGap()) return;
    const now = this.scheduler.now();
    const repeatPs = this.nakRepeatPs(peer);
    const { ranges, nextAtPs } = r.dueNaks(Math.min(now - repeatPs, peer.nakArmedAtPs), now);
    if (nextAtPs < 0) return;
    // Armed before sending, so the sends do not arm it again: next due is the earliest NAK stamp left.
    this.scheduleNakCheck(peer, Math.max(0, nextAtPs + repeatPs - now));
    for (const gap of ranges) this.sendNak(peer, gap);
  }

  private sendAck(peer: Peer): void {
    const pdu = new ExpEtherPdu('ack', -1, peer.receiver.cumulativeAck(), null, null);
    peer.receiver.unackedCount = 0;
    this.counters.acksSent++;
    this.eth.send(new Frame(peer.mac, this.mac, this.groupId, EXPETHER_ETHERTYPE, pdu, pdu.payloadBytes()), this.latencyPs);
  }

  /** Sends a TLP this bridge generated (e.g. a config completion) to a peer over the reliable link. */
  protected sendToPeer(mac: number, tlp: Tlp): void {
    if (this.ingressTlp.length === 0 && this.trySend(mac, tlp)) return;
    this.queueIngress(tlp, null, mac);
  }

  // ---- Bursts (burst granularity; docs/architecture.md "Two granularities") -----------------------
  //
  // A burst from PCIe goes out as consecutive frames, one per constituent, as far as its peer's window
  // allows (the rest waits at the head of the ingress queue, holding its credits); frame i starts no
  // earlier than its constituent was ready here and than the ACK that opened its window slot arrived
  // (`Peer.ackAtPs`). A burst of frames from Ethernet goes to PCIe as one burst, and its ACKs are
  // made per frame at the time each left toward PCIe (every `ackEveryFrames`, or `ackDelayNs` after the
  // first unacknowledged), carried as one burst of bare ACK frames. A cable that drops frames splits a burst into its frames
  // first (runtime/faults.ts, live/udp-transport.ts): a lost one is recovered frame by frame.

  /** Notes when the ACKs up to `ack` arrived (the window timeline bursts are sent against). */
  private recordAckTimes(peer: Peer, ack: number, atPs: number): void {
    const w = peer.ackAtPs.length;
    let s = peer.ackedThrough + 1;
    if (ack - s >= w) s = ack - w + 1; // older slots are overwritten anyway
    for (; s <= ack; s++) peer.ackAtPs[s % w] = atPs;
    if (ack > peer.ackedThrough) peer.ackedThrough = ack;
  }

  /** The ACK times a burst frame brings: each bare ACK's at its own arrival, a piggybacked one at the first frame's. */
  private burstAckTimes(peer: Peer, pdu: ExpEtherPdu, arrivals: Float64Array): void {
    const acks = pdu.burstAcks;
    if (acks) for (let j = 0; j < acks.length; j++) this.recordAckTimes(peer, acks[j], arrivals[j]);
    else if (pdu.ack >= 0) this.recordAckTimes(peer, pdu.ack, arrivals[0]);
  }

  /** A burst from PCIe: what the window takes goes now, the rest waits (holding its credits). */
  private receiveBurst(mac: number, tlp: Tlp, port: PciePort): void {
    if (this.ingressTlp.length === 0) {
      const starts = this.sendBurst(mac, tlp);
      const sent = starts === null ? 0 : starts.length;
      if (sent === tlp.count) {
        port.release(tlp, starts);
        return;
      }
      if (sent > 0) {
        port.release(sliceBurst(tlp, 0, sent), starts);
        tlp = sliceBurst(tlp, sent, tlp.count);
      }
    }
    this.queueIngress(tlp, tlp, mac);
  }

  /**
   * The burst at the head of the ingress queue: sends what the window takes; when all of it went, when
   * each frame was committed (the times its TLPs are freed on PCIe), else null.
   */
  private drainBurst(head: Tlp): Float64Array | null {
    const starts = this.sendBurst(this.ingressMac.peek()!, head);
    const sent = starts === null ? 0 : starts.length;
    if (sent === head.count) return starts;
    if (sent > 0) {
      const original = this.ingressOriginal.peek();
      if (original) this.pcie.release(sliceBurst(head, 0, sent), starts);
      const rest = sliceBurst(head, sent, head.count);
      if (head.kind === 'MRd') this.countRead(-sent);
      this.ingressTlp.setHead(rest);
      this.ingressOriginal.setHead(original ? rest : null);
    }
    return null;
  }

  /**
   * Sends the first constituents of `tlp` that the window and the Ethernet buffer take, as one burst
   * of frames; returns when each frame sent was committed (per-TLP's bridge frees each TLP on PCIe
   * then), or null when none went.
   */
  private sendBurst(mac: number, tlp: Tlp): Float64Array | null {
    const peer = this.peer(mac);
    if (!peer) throw new Error(`bridge ${this.name}: no peer ${mac.toString(16)}`);
    const s = peer.sender;
    const w = s.windowFrames;
    const free = w - s.inFlight();
    if (free <= 0) {
      this.waiting(1, 0);
      return null;
    }
    const k = Math.min(free, tlp.count);
    const piece = k === tlp.count ? tlp : sliceBurst(tlp, 0, k);
    const lengths = encodedParts(piece, new Float64Array(k));
    if (!this.eth.hasRoom(EXPETHER_HEADER_BYTES + lengths[0], this.latencyPs)) {
      this.waitForRoom(EXPETHER_HEADER_BYTES + lengths[0]);
      return null;
    }
    const now = this.scheduler.now();
    const ready = piece.readyPs;
    const starts = new Float64Array(k);
    const parts = new Uint16Array(k);
    let total = 0;
    // The burst's frames are tracked together; a retransmission makes the one per-TLP would have sent (ReliableSender.frameAt).
    const pdu = new ExpEtherPdu('tlp', -1, peer.receiver.cumulativeAck(), piece, null);
    s.trackBurst(pdu, k, now);
    const first = pdu.seq;
    for (let i = 0; i < k; i++) {
      const seq = first + i;
      const slot = seq >= w ? peer.ackAtPs[(seq - w) % w] : 0;
      const r = ready ? ready[i] : now;
      starts[i] = r > slot ? r : slot;
      parts[i] = EXPETHER_HEADER_BYTES + lengths[i];
      total += parts[i];
    }
    // Per-TLP's bridge waits for room in its output buffer before each frame: so do these.
    this.eth.admitBurst(parts, starts, this.latencyPs);
    this.counters.tlpsToEthernet += k;
    this.counters.framesSent += k;
    peer.receiver.unackedCount = 0;
    const frame = new Frame(peer.mac, this.mac, this.groupId, EXPETHER_ETHERTYPE, pdu, total, parts);
    frame.readyPs = starts;
    frame.readRequest = piece.kind === 'MRd';
    this.eth.send(frame, this.latencyPs);
    this.armRetransmit(peer);
    return starts;
  }

  /**
   * A burst of frames from a peer, in order: on to PCIe as one burst. One that is not next in order
   * (a channel that loses whole datagrams: live/udp-transport.ts), or that arrives while the reorder
   * buffer holds frames, goes frame by frame through the per-frame path, which holds, NAKs and drops
   * duplicates as for any frame.
   */
  private receiveBurstFrame(peer: Peer, frame: Frame, pdu: ExpEtherPdu, arrivals: Float64Array): void {
    const r = peer.receiver;
    const cls = r.classify(pdu.seq);
    if (cls === 'held' && r.canHoldBurst(pdu.seq, pdu.tlp!.count)) {
      // Ahead of a gap, all of it new: it waits whole in the reorder buffer and goes on as a burst
      // once the gap fills (per-TLP's frames would wait, then go, one by one).
      this.counters.heldOutOfOrder += pdu.tlp!.count;
      if (r.holdBurst(pdu, pdu.tlp!.count, this.scheduler.now())) this.armGapCheck(peer);
      return;
    }
    if (cls !== 'next' || r.hasGap()) {
      for (const f of constituentFrames(frame)) this.receiveFrame(f);
      return;
    }
    this.deliverBurst(peer, pdu, arrivals);
  }

  /** The next expected frames, a burst (arrived in order, or held whole until its gap filled): accepted and offered to PCIe as one burst. */
  private deliverBurst(peer: Peer, pdu: ExpEtherPdu, arrivals: Float64Array): void {
    const r = peer.receiver;
    const tlp = pdu.tlp!;
    for (let i = 0; i < tlp.count; i++) r.acceptNext(arrivals[i]);
    this.counters.tlpsFromEthernet += tlp.count;
    tlp.readyPs = arrivals;
    let rest = tlp;
    let seq = pdu.seq;
    if (this.egressTlp.length === 0) {
      const taken = this.pcie.offer(tlp);
      if (taken > 0) this.deliveredBurst(peer, seq, taken, arrivals);
      if (taken === tlp.count) return;
      if (taken > 0) {
        rest = sliceBurst(tlp, taken, tlp.count);
        seq += taken;
      }
    }
    this.queueEgress(rest, peer, seq);
  }

  /**
   * Frames first..first+n-1 left toward PCIe at `left[i]` (not before now if they waited here, unless
   * `leftMayBePast`: the times the port's queue had room for them): their ACKs, per frame as
   * `delivered` makes them, go out as one burst of bare ACK frames.
   */
  private deliveredBurst(peer: Peer, first: number, n: number, left: Float64Array, leftMayBePast = false): void {
    const r = peer.receiver;
    const now = this.scheduler.now();
    const every = this.params.ackEveryFrames;
    const times: number[] = [];
    const values: number[] = [];
    // The delay timer, as per-TLP's: armed at a delivery that leaves frames unacknowledged when it is
    // not armed, and not restarted by the ACKs sent meanwhile (every `ackEveryFrames`, piggybacked);
    // when it fires it acknowledges whatever is unacknowledged then.
    let due = r.ackTimerArmed ? peer.ackDuePs : -1;
    for (let i = 0; i < n; i++) {
      const at = leftMayBePast || left[i] > now ? left[i] : now;
      if (due >= 0 && due <= at) {
        if (r.unackedCount > 0) {
          times.push(due);
          values.push(r.delivered);
          r.unackedCount = 0;
        }
        due = -1;
      }
      r.delivered = first + i;
      r.unackedCount++;
      if (r.unackedCount >= every) {
        times.push(at);
        values.push(first + i);
        r.unackedCount = 0;
      } else if (due < 0) due = at + this.ackDelayPs;
    }
    peer.ackDuePs = due;
    if (peer.ackDuePs >= 0 && !r.ackTimerArmed) this.armAckTimer(peer);
    if (times.length === 0) return;
    const pdu = new ExpEtherPdu('ack', -1, values[values.length - 1], null, null);
    pdu.burstAcks = Float64Array.from(values);
    const bytes = pdu.payloadBytes();
    this.counters.acksSent += times.length;
    const frame = new Frame(peer.mac, this.mac, this.groupId, EXPETHER_ETHERTYPE, pdu, bytes * times.length, new Uint16Array(times.length).fill(bytes));
    frame.readyPs = Float64Array.from(times);
    this.eth.send(frame, this.latencyPs);
  }

  /** Arms the ACK delay timer for the due time bursts computed. */
  private armAckTimer(peer: Peer): void {
    peer.receiver.ackTimerArmed = true;
    const now = this.scheduler.now();
    this.scheduler.schedule(peer.ackDuePs > now ? peer.ackDuePs - now : 0, peer.ackTimeout);
  }
}
