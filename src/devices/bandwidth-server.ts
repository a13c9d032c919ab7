/** A bandwidth server: requests are served one after another at a fixed rate (flash channels, DDR). */
import type { StateDigest } from '../core/digest.js';
import { Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';

export class BandwidthServer {
  private busyUntilPs = 0;
  /** Busy time booked so far, including work booked for later (a request is booked when it arrives). */
  busyPs = 0;
  bytes = 0;
  /** How long the last request waited for earlier ones (trace only). */
  lastWaitPs = 0;
  /** Booked busy runs before the last, [start, end) ps, oldest first, pruned once ended (trace only; with a clock). */
  private readonly runStarts = new Ring<number>();
  private readonly runEnds = new Ring<number>();
  /** The last booked run, extended while requests follow each other without a gap. */
  private lastStartPs = 0;
  private lastEndPs = 0;

  constructor(
    private readonly psPerByte: number,
    /** When given, `doneBusyPs` can tell busy time already spent from busy time booked ahead. */
    private readonly clock?: Pick<Scheduler, 'now'>,
  ) {}

  digest(d: StateDigest): void {
    d.until(this.busyUntilPs);
  }

  /** Serves `bytes` no earlier than `earliestPs`; returns when they are done. */
  serve(earliestPs: number, bytes: number): number {
    const start = Math.max(earliestPs, this.busyUntilPs);
    this.lastWaitPs = start - earliestPs;
    const dur = Math.ceil(bytes * this.psPerByte);
    if (this.clock) this.book(start, start + dur);
    this.busyUntilPs = start + dur;
    this.busyPs += dur;
    this.bytes += bytes;
    return this.busyUntilPs;
  }

  /**
   * Busy time spent up to now: `busyPs` less what is booked beyond now. This is what a trace counter
   * reports, so a snapshot taken while work is queued ahead (a drive's write buffer) does not count
   * it before it is done (the fast fidelity scales the difference of two snapshots). Without a
   * clock, `busyPs`.
   */
  doneBusyPs(): number {
    if (!this.clock) return this.busyPs;
    const now = this.clock.now();
    this.prune(now);
    let ahead = Math.max(0, this.lastEndPs - Math.max(this.lastStartPs, now));
    for (let i = 0; i < this.runEnds.length; i++) ahead += this.runEnds.at(i)! - Math.max(this.runStarts.at(i)!, now);
    return this.busyPs - ahead;
  }

  private book(start: number, end: number): void {
    if (start === this.lastEndPs) {
      this.lastEndPs = end;
      return;
    }
    this.prune(this.clock!.now());
    if (this.lastEndPs > this.clock!.now()) {
      this.runStarts.push(this.lastStartPs);
      this.runEnds.push(this.lastEndPs);
    }
    this.lastStartPs = start;
    this.lastEndPs = end;
  }

  private prune(now: number): void {
    while (this.runEnds.length > 0 && this.runEnds.peek()! <= now) {
      this.runEnds.shift();
      this.runStarts.shift();
    }
  }
}
