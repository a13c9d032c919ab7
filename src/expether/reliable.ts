import type { StateDigest } from '../core/digest.js';
import { Ring } from '../core/ring.js';
import type { ExpEtherPdu } from './pdu.js';

export interface ReliableParams {
  /** Unacknowledged frames a sender may have outstanding to one peer (the window). */
  windowFrames: number;
  /** Time after which the oldest unacknowledged frame is resent with everything after it (go-back-N), ns. */
  retransmitTimeoutNs: number;
  /** A receiver acknowledges at least every this many in-order frames... */
  ackEveryFrames: number;
  /** ...and no later than this after the first unacknowledged one, ns. */
  ackDelayNs: number;
}

/**
 * Sender half of a per-peer reliable, in-order link (layer 2, as ExpEther does it): sequence numbers,
 * a bounded window of unacknowledged frames kept for retransmission, cumulative acknowledgements.
 */
export class ReliableSender {
  private nextSeq = 0;
  /** Unacknowledged PDUs in sequence order, with the time each was last sent (rings: no compaction copies). */
  private readonly unacked = new Ring<ExpEtherPdu>();
  private readonly sentAtPs = new Ring<number>();
  retransmissions = 0;

  constructor(readonly windowFrames: number) {}

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
    this.sentAtPs.push(nowPs);
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
    for (let i = 0; i < this.unacked.length; i++) d.num(this.unacked.at(i)!.seq - this.nextSeq);
    const oldest = this.oldestSentPs();
    if (oldest >= 0 && d.nowPs - oldest >= rtoPs / 2) d.str(`old@${d.nowPs}`);
    d.num(this.retransmissions);
  }

  /** Drops every PDU with seq <= ack; returns how many were released. */
  acknowledge(ack: number): number {
    let n = 0;
    while (this.unacked.length > 0 && this.unacked.peek()!.seq <= ack) {
      this.unacked.shift();
      this.sentAtPs.shift();
      n++;
    }
    return n;
  }

  /** Time the oldest unacknowledged PDU was sent, or -1. */
  oldestSentPs(): number {
    return this.sentAtPs.length > 0 ? this.sentAtPs.peek()! : -1;
  }

  /** PDUs to resend (all unacknowledged, in order) and marks them sent now. */
  takeForRetransmit(nowPs: number): ExpEtherPdu[] {
    const n = this.unacked.length;
    const out: ExpEtherPdu[] = [];
    for (let i = 0; i < n; i++) {
      out.push(this.unacked.at(i)!);
      this.sentAtPs.shift();
      this.sentAtPs.push(nowPs);
    }
    this.retransmissions += out.length;
    return out;
  }
}

/** Receiver half: accepts only the next expected sequence number (go-back-N). */
export class ReliableReceiver {
  /** Next sequence number expected. */
  expected = 0;
  /** Last sequence number whose content left the receive buffer: what the cumulative ACK reports. */
  delivered = -1;
  /** In-order frames received since the last ACK sent. */
  unackedCount = 0;
  ackTimerArmed = false;

  classify(seq: number): 'next' | 'duplicate' | 'gap' {
    if (seq === this.expected) return 'next';
    return seq < this.expected ? 'duplicate' : 'gap';
  }

  /** The cumulative ACK value to send: the last sequence number delivered onward. */
  cumulativeAck(): number {
    return this.delivered;
  }
}
