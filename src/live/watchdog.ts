/**
 * The host's watchdog over the boxes of one session (issue 19: no false alarms). While the host waits
 * on a box (boot: all of them; a job: the boxes it uses; an NBD request: its drive's box), the box is
 * judged by what it sends, never by data progress (a paced or loaded copy may go seconds without a
 * completion, and is not lost): ANY good datagram from it counts (data, ACKs or the keepalive a box
 * sends every KEEPALIVE_MS when idle; udp-transport.ts `lastHeardMs`).
 *
 * - Silent for `timeoutMs` (`--peer-timeout`), counted from when the waiting began at the earliest (a
 *   box need not be heard while nothing is asked of it): stopped.
 * - A keepalive with another incarnation than the one this session met: restarted (it knows nothing
 *   of the session).
 * - A keepalive saying its model stopped: just that.
 *
 * Each ends the session once (`onLost`, a BOX_LOST DconnectError). Time comes from an injected `Clock`
 * (tests drive it by hand); the live host gives it the wall clock (`wallClock`), in the same time base
 * as the transport's `lastHeardMs` (performance.now()).
 */
import { DconnectError } from '../core/errors.js';

/** The watchdog's time: now in ms, and a periodic timer. */
export interface Clock {
  nowMs(): number;
  every(periodMs: number, fn: () => void): { cancel(): void };
}

/** The wall clock (performance.now(), the transport's time base) and setInterval. */
export const wallClock: Clock = {
  nowMs: () => performance.now(),
  every: (periodMs, fn) => {
    const t = setInterval(fn, periodMs);
    return { cancel: () => clearInterval(t) };
  },
};

/** How often the watchdog looks, ms: a lost box is caught within --peer-timeout plus this. */
export const WATCHDOG_MS = 200;

export interface WatchdogOptions {
  clock: Clock;
  /** Silence that means stopped, ms (`--peer-timeout`). */
  timeoutMs: number;
  /** When the last good datagram from `box` arrived, in the clock's ms (null: never). */
  lastHeardMs(box: string): number | null;
  /** A box with its address and pid, for messages. */
  label(box: string): string;
  /** The session's epoch, for messages. */
  epoch: number;
  /** Where a box's log is, for the hint when its model stopped. */
  logOf(box: string): string;
  /** Called once, when a box is judged lost. */
  onLost(e: DconnectError): void;
}

export class Watchdog {
  /** Boxes the host waits on now, each with how many waits hold it (boot, a job, NBD requests). */
  private readonly waits = new Map<string, number>();
  /** Clock ms since which the host has been waiting on some box (null: idle). */
  private waitSinceMs: number | null = null;
  /** Each box's incarnation as first heard in this session. */
  private readonly incarnations = new Map<string, number>();
  private readonly timer: { cancel(): void };
  private ended = false;

  constructor(private readonly o: WatchdogOptions) {
    this.timer = o.clock.every(WATCHDOG_MS, () => this.check());
  }

  /** Starts waiting on `boxes`; the returned function ends this wait (once; later calls do nothing). */
  waitOn(boxes: Iterable<string>): () => void {
    const mine = [...boxes];
    if (mine.length === 0) return () => {};
    if (this.waits.size === 0) this.waitSinceMs = this.o.clock.nowMs();
    for (const b of mine) this.waits.set(b, (this.waits.get(b) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const b of mine) {
        const n = this.waits.get(b)! - 1;
        if (n > 0) this.waits.set(b, n);
        else this.waits.delete(b);
      }
      if (this.waits.size === 0) this.waitSinceMs = null;
    };
  }

  /** The boxes waited on now. */
  waiting(): string[] {
    return [...this.waits.keys()];
  }

  /** A keepalive (udp-transport.ts): the first of the session records the box's incarnation; another one, or a stopped model, is a loss. */
  keepalive(box: string, incarnation: number, state: number): void {
    if (this.ended) return;
    const met = this.incarnations.get(box);
    if (met === undefined) this.incarnations.set(box, incarnation);
    else if (met !== incarnation) return this.lost(new DconnectError('BOX_LOST', `box ${this.o.label(box)} restarted during session ${this.o.epoch}: it knows nothing of this session`, 'the next request starts a new session; dconnect copy --resume continues a failed job'));
    if (state === 1) this.lost(new DconnectError('BOX_LOST', `box ${this.o.label(box)}: its model stopped with an error (its log says which)`, `see ${this.o.logOf(box)}`));
  }

  /** One look: a box waited on and silent for the timeout is lost. */
  check(): void {
    if (this.ended || this.waitSinceMs === null) return;
    const now = this.o.clock.nowMs();
    const since = this.waitSinceMs;
    const silenceMs = (b: string) => now - Math.max(this.o.lastHeardMs(b) ?? -Infinity, since);
    const silent = [...this.waits.keys()].filter((b) => silenceMs(b) > this.o.timeoutMs);
    if (silent.length === 0) return;
    const what = `box ${silent.map((b) => this.o.label(b)).join(', ')} stopped answering: nothing from it for ${(silenceMs(silent[0]!) / 1000).toFixed(1)} s (--peer-timeout ${this.o.timeoutMs} ms)`;
    this.lost(new DconnectError('BOX_LOST', what, 'is it running? dconnect status shows the nodes; dconnect up restarts stopped ones'));
  }

  /** Stops looking (the session ended). */
  stop(): void {
    this.ended = true;
    this.timer.cancel();
  }

  private lost(e: DconnectError): void {
    this.stop();
    this.o.onLost(e);
  }
}
