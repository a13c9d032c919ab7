/**
 * Live mode's scheduler (issue "Live fabric"): the model's events run when the wall clock reaches
 * their simulated time multiplied by the time-dilation factor, as in time-dilated network emulation
 * (`--time-dilation N`: one simulated second takes N wall seconds). The order of events is the
 * VirtualScheduler's (time, sequence); this class only decides when they run, best effort, and
 * measures by how much each ran late (lag: max and p99, always). With a hard limit, the first event
 * later than it stops the run with a clear error.
 *
 * This is live code: it reads the wall clock and sets timers, through an injected `WallClock` (the
 * real one by default, a fake one in tests), and lives outside the model layers, which never import it.
 * Input from outside (a socket) enters with `inject`, as an event at the simulated time that
 * corresponds to now.
 *
 * Two pacings (`--pace`):
 * - `model`: as above; links and flash take their modelled time, dilated. Retransmission timers are
 *   ordinary events: the peer's clock runs at the same dilation, so they mean what they mean in the
 *   simulator.
 * - `none`: as fast as the machine goes. Events run back to back in the model's order, never waiting
 *   for the wall clock, as long as any event other than a timeout (Scheduler.scheduleTimeout: a timer
 *   that detects a loss) is pending. When only timeouts are left, the node is waiting for its peer,
 *   another process whose simulated clock is not ours; jumping to the timeout would retransmit before
 *   the answer could come. So it waits for the timeout in wall time instead (one wall second per
 *   simulated second, times the dilation), and input that arrives meanwhile runs first. Simulated
 *   time then says nothing about wall time, and lag is not a measure of anything: it is not reported.
 */
import { DconnectError } from '../core/errors.js';
import { VirtualScheduler, type Callback, type Scheduler } from '../core/scheduler.js';

export interface WallClock {
  /** Milliseconds, monotonic. */
  nowMs(): number;
  /** Calls `fn` after about `ms` milliseconds; returns a handle for `clear`. */
  setTimer(ms: number, fn: () => void): unknown;
  clear(handle: unknown): void;
  /** Calls `fn` once pending I/O has run (setImmediate); default: setTimer(0). */
  immediate?(fn: () => void): unknown;
}

/** The real clock. A handle is a timeout or, for `immediate`, `{ immediate }`. */
export const REAL_CLOCK: WallClock = {
  nowMs: () => performance.now(),
  setTimer: (ms, fn) => setTimeout(fn, Math.max(0, ms)),
  clear: (h) => {
    if (h && typeof h === 'object' && 'immediate' in h) clearImmediate((h as { immediate: NodeJS.Immediate }).immediate);
    else clearTimeout(h as ReturnType<typeof setTimeout>);
  },
  immediate: (fn) => ({ immediate: setImmediate(fn) }),
};

export type Pace = 'model' | 'none';
export const PACES: readonly Pace[] = ['model', 'none'];

export interface RealtimeOptions {
  /** Wall seconds per simulated second (>= 1 usually: the model runs slower than the hardware). With pace none: only for waiting out timeouts. */
  dilation: number;
  /** model (default): events at their dilated time; none: back to back (see the file comment). */
  pace?: Pace;
  /** Stop with an error when an event runs later than this, ms; absent: best effort. Pace model only. */
  hardLimitMs?: number;
  clock?: WallClock;
}

/** Events run in one turn of the event loop at most, so socket input and the control API are served between turns. */
const EVENTS_PER_TURN = 4096;
/** And at most this much wall time per turn, ms. */
const MS_PER_TURN = 4;

/** Lag of events, in a histogram of fixed buckets (bounded memory however long the run). */
export class LagStats {
  /** Bucket k counts lags in [EDGE_MS[k-1], EDGE_MS[k]); the last is open. */
  static readonly EDGE_MS = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, Infinity];
  private readonly counts = new Array<number>(LagStats.EDGE_MS.length).fill(0);
  count = 0;
  maxMs = 0;

  add(lagMs: number): void {
    const l = Math.max(0, lagMs);
    this.count++;
    if (l > this.maxMs) this.maxMs = l;
    let k = 0;
    while (l >= LagStats.EDGE_MS[k]) k++;
    this.counts[k]++;
  }

  /** An upper bound of the p-quantile (the edge of its bucket), ms. */
  quantileMs(p: number): number {
    if (this.count === 0) return 0;
    const want = Math.ceil(p * this.count);
    let seen = 0;
    for (let k = 0; k < this.counts.length; k++) {
      seen += this.counts[k];
      if (seen >= want) return Math.min(LagStats.EDGE_MS[k], this.maxMs);
    }
    return this.maxMs;
  }

  summary(): { events: number; maxMs: number; p99Ms: number } {
    return { events: this.count, maxMs: this.maxMs, p99Ms: this.quantileMs(0.99) };
  }
}

export class RealtimeScheduler implements Scheduler {
  private readonly inner = new VirtualScheduler();
  private readonly clock: WallClock;
  readonly pace: Pace;
  private startMs = 0;
  private timer: unknown = null;
  private running = false;
  private failure: ((e: Error) => void) | null = null;
  /** Timeout events pending (pace none tells waiting for a peer from having work by them). */
  private timeoutsPending = 0;
  /** Pace none: simulated ps (-1: not idle) and wall ms at which the node went idle (only timeouts left). */
  private idleSincePs = -1;
  private idleSinceMs = 0;
  readonly lag = new LagStats();

  constructor(private readonly o: RealtimeOptions) {
    if (!(o.dilation > 0) || !Number.isFinite(o.dilation)) throw new DconnectError('BAD_OPTION', `--time-dilation ${o.dilation} is not a positive number`, 'use e.g. --time-dilation 10 (one simulated second takes ten wall seconds)');
    this.pace = o.pace ?? 'model';
    if (!PACES.includes(this.pace)) throw new DconnectError('BAD_OPTION', `--pace ${String(o.pace)} is not one of ${PACES.join(', ')}`);
    this.clock = o.clock ?? REAL_CLOCK;
  }

  get dilation(): number {
    return this.o.dilation;
  }

  now(): number {
    return this.inner.now();
  }

  get eventsExecuted(): number {
    return this.inner.eventsExecuted;
  }

  schedule(delayPs: number, fn: Callback): void {
    this.inner.schedule(delayPs, fn);
    if (this.running) this.arm();
  }

  scheduleTimeout(delayPs: number, fn: Callback): void {
    if (this.pace === 'model') return this.schedule(delayPs, fn);
    this.timeoutsPending++;
    this.schedule(delayPs, () => {
      this.timeoutsPending--;
      fn();
    });
  }

  /**
   * Runs `fn` as an event now (input from a socket, a control request). Pace model: at the simulated
   * time of the wall clock now, or, when events are running late, right behind those already due
   * (stamping it with the wall time would put it ahead of the backlog's clock and make every
   * timeout armed in the backlog look expired). Pace none: at the current simulated time.
   */
  inject(fn: Callback): void {
    const now = this.inner.now();
    const target = this.pace === 'none' ? now : Math.max(now, Math.min(this.psAt(this.clock.nowMs()), this.inner.nextDuePs()));
    this.schedule(target - now, fn);
  }

  /** Starts running events against the wall clock; `onError` hears of a missed hard limit or a throwing event. */
  start(onError: (e: Error) => void): void {
    this.startMs = this.clock.nowMs() - (this.inner.now() / 1e9) * this.o.dilation;
    this.running = true;
    this.failure = onError;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.clearTimer();
  }

  /** The lag summary for reports; null with pace none, where lag means nothing. */
  lagSummary(): { events: number; maxMs: number; p99Ms: number } | null {
    return this.pace === 'model' ? this.lag.summary() : null;
  }

  /** Wall ms at which simulated time `ps` is due. */
  private dueMs(ps: number): number {
    return this.startMs + (ps / 1e9) * this.o.dilation;
  }

  private psAt(ms: number): number {
    return Math.floor(((ms - this.startMs) / this.o.dilation) * 1e9);
  }

  private clearTimer(): void {
    if (this.timer !== null) this.clock.clear(this.timer);
    this.timer = null;
  }

  /** Pace none: only timeouts are pending, so the node waits for its peer. */
  private waitingForPeer(): boolean {
    return this.inner.pending() === this.timeoutsPending;
  }

  private soon(): unknown {
    const fire = () => this.fire();
    return this.clock.immediate ? this.clock.immediate(fire) : this.clock.setTimer(0, fire);
  }

  /** Pace none, idle: when the earliest timeout is due on the wall clock (from when the node went idle at this simulated time). */
  private idleDueMs(next: number): number {
    if (this.idleSincePs !== this.inner.now()) {
      this.idleSincePs = this.inner.now();
      this.idleSinceMs = this.clock.nowMs();
    }
    return this.idleSinceMs + ((next - this.idleSincePs) / 1e9) * this.o.dilation;
  }

  /** (Re)sets the one timer for the earliest pending event. */
  private arm(): void {
    this.clearTimer();
    const next = this.inner.nextDuePs();
    if (next === Infinity) return;
    const dueMs = this.pace === 'model' ? this.dueMs(next) : this.waitingForPeer() ? this.idleDueMs(next) : -Infinity;
    const waitMs = dueMs - this.clock.nowMs();
    this.timer = waitMs > 0 ? this.clock.setTimer(waitMs, () => this.fire()) : this.soon();
  }

  /** Runs the events due (pace model: by the wall clock, each measured against its due time; pace none: every one but a timeout not yet waited out), a bounded batch per turn. */
  private fire(): void {
    this.timer = null;
    const turnStart = this.clock.nowMs();
    try {
      for (let n = 0; n < EVENTS_PER_TURN; n++) {
        const next = this.inner.nextDuePs();
        if (next === Infinity) break;
        const nowMs = this.clock.nowMs();
        if (this.pace === 'model') {
          if (this.dueMs(next) > nowMs) break;
          const late = nowMs - this.dueMs(next);
          this.lag.add(late);
          if (this.o.hardLimitMs !== undefined && late > this.o.hardLimitMs) {
            throw new DconnectError('LAG_LIMIT', `an event ran ${late.toFixed(1)} ms late, over the hard limit of ${this.o.hardLimitMs} ms (dilation ${this.o.dilation})`, 'raise --time-dilation (or use --time-dilation auto), or drop --hard-limit for best effort');
          }
        } else if (this.waitingForPeer()) {
          if (this.idleDueMs(next) > nowMs) break;
          this.idleSincePs = -1;
        }
        this.inner.step();
        if ((n & 63) === 63 && this.clock.nowMs() - turnStart > MS_PER_TURN) break;
      }
    } catch (e) {
      this.stop();
      this.failure?.(e as Error);
      return;
    }
    if (this.running) this.arm();
  }
}
