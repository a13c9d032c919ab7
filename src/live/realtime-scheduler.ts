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
 */
import { DconnectError } from '../core/errors.js';
import { VirtualScheduler, type Callback, type Scheduler } from '../core/scheduler.js';

export interface WallClock {
  /** Milliseconds, monotonic. */
  nowMs(): number;
  /** Calls `fn` after about `ms` milliseconds; returns a handle for `clear`. */
  setTimer(ms: number, fn: () => void): unknown;
  clear(handle: unknown): void;
}

export const REAL_CLOCK: WallClock = {
  nowMs: () => performance.now(),
  setTimer: (ms, fn) => setTimeout(fn, Math.max(0, ms)),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface RealtimeOptions {
  /** Wall seconds per simulated second (>= 1 usually: the model runs slower than the hardware). */
  dilation: number;
  /** Stop with an error when an event runs later than this, ms; absent: best effort. */
  hardLimitMs?: number;
  clock?: WallClock;
}

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
  private startMs = 0;
  private timer: unknown = null;
  private running = false;
  private failure: ((e: Error) => void) | null = null;
  readonly lag = new LagStats();

  constructor(private readonly o: RealtimeOptions) {
    if (!(o.dilation > 0) || !Number.isFinite(o.dilation)) throw new DconnectError('BAD_OPTION', `--time-dilation ${o.dilation} is not a positive number`, 'use e.g. --time-dilation 10 (one simulated second takes ten wall seconds)');
    this.clock = o.clock ?? REAL_CLOCK;
  }

  now(): number {
    return this.inner.now();
  }

  schedule(delayPs: number, fn: Callback): void {
    this.inner.schedule(delayPs, fn);
    if (this.running) this.arm();
  }

  /** Runs `fn` as an event at the simulated time that corresponds to the wall clock now (input from a socket). */
  inject(fn: Callback): void {
    const targetPs = Math.max(this.inner.now(), this.psAt(this.clock.nowMs()));
    this.schedule(targetPs - this.inner.now(), fn);
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
    if (this.timer !== null) this.clock.clear(this.timer);
    this.timer = null;
  }

  /** Wall ms at which simulated time `ps` is due. */
  private dueMs(ps: number): number {
    return this.startMs + (ps / 1e9) * this.o.dilation;
  }

  private psAt(ms: number): number {
    return Math.floor(((ms - this.startMs) / this.o.dilation) * 1e9);
  }

  /** (Re)sets the one timer for the earliest pending event. */
  private arm(): void {
    if (this.timer !== null) this.clock.clear(this.timer);
    this.timer = null;
    const next = this.inner.nextDuePs();
    if (next === Infinity) return;
    this.timer = this.clock.setTimer(this.dueMs(next) - this.clock.nowMs(), () => this.fire());
  }

  /** Runs every event due by now, each measured against its own due time. */
  private fire(): void {
    this.timer = null;
    try {
      for (;;) {
        const next = this.inner.nextDuePs();
        const nowMs = this.clock.nowMs();
        if (next === Infinity || this.dueMs(next) > nowMs) break;
        const late = nowMs - this.dueMs(next);
        this.lag.add(late);
        if (this.o.hardLimitMs !== undefined && late > this.o.hardLimitMs) {
          throw new DconnectError('LAG_LIMIT', `an event ran ${late.toFixed(1)} ms late, over the hard limit of ${this.o.hardLimitMs} ms (dilation ${this.o.dilation})`, 'raise --time-dilation (or use --time-dilation auto), or drop --hard-limit for best effort');
        }
        this.inner.step();
      }
    } catch (e) {
      this.stop();
      this.failure?.(e as Error);
      return;
    }
    if (this.running) this.arm();
  }
}
