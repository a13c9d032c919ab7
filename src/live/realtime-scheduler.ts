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
 *   for the wall clock. The exception is a timeout (Scheduler.scheduleTimeout: a timer that detects a
 *   loss, the bridges' retransmission timer): the peer is another process whose simulated clock is
 *   not ours, so a timeout judged by our simulated clock alone would fire before the peer could
 *   answer whenever we run faster than real time. A timeout therefore runs at the later of its
 *   simulated time and its wall deadline (armed at wall time w with delay d: w + max(d x dilation,
 *   the wall timeout)), and input that arrives meanwhile runs first. The wall timeout follows a
 *   measured wall time: for a retransmission timeout ('ack') the bridges
 *   time one frame at a time to its ACK, for a NAK's repeat ('repair') a first NAK to the frame it
 *   named (`timeoutStamp`, `roundTrip`); the timeout is 2 srtt + MS_PER_TURN (RttEstimator), within
 *   MIN_TIMEOUT_WALL_MS..INITIAL_TIMEOUT_WALL_MS; INITIAL_TIMEOUT_WALL_MS before the first measurement. Simulated time
 *   then says nothing about wall time, and lag is not reported.
 */
import { DconnectError } from '../core/errors.js';
import { VirtualScheduler, type Callback, type Scheduler, type TimeoutKind } from '../core/scheduler.js';

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
export const MS_PER_TURN = 1;
/**
 * Pace none: the wall time a timeout waits before any round trip was measured, and the most it ever
 * waits, ms (the fixed value this replaced: a peer reads its socket only between its turns, so an
 * answer can wait there a few turns, and one event can block a node for milliseconds). The cap keeps
 * one outlier (a node blocked by an fsync) from inflating every later timeout for long.
 */
export const INITIAL_TIMEOUT_WALL_MS = 20 * MS_PER_TURN;
/** Pace none: the least wall time a timeout waits however short the measured round trip, ms (two of a peer's turns). */
export const MIN_TIMEOUT_WALL_MS = 2 * MS_PER_TURN;

/**
 * A wall round-trip estimate and the timeout it gives, ms. The estimate is RFC 6298's smoothed round
 * trip (alpha 1/8); the timeout is a probe timeout as RACK-TLP sizes one (RFC 8985 section 7.2: two
 * smoothed round trips), plus one turn (a peer reads its socket only between its turns), within
 * MIN_TIMEOUT_WALL_MS..INITIAL_TIMEOUT_WALL_MS; INITIAL_TIMEOUT_WALL_MS before the first sample. Not
 * RFC 6298's srtt + 4 rttvar: that protects TCP, whose timeout collapses its window and goes back N,
 * from firing early; here a timeout resends one frame (a NAK repeat, one NAK), and live round trips
 * have a long tail (measured under 1% loss: p50 0.8 ms, p99 11 ms), which kept that timeout at its
 * 20 ms cap while a lost resend or tail frame stalled its flow. Pure arithmetic: the samples come from the caller.
 */
export class RttEstimator {
  srttMs = -1;
  samples = 0;

  add(sampleMs: number): void {
    const r = Math.max(0, sampleMs);
    this.samples++;
    this.srttMs = this.srttMs < 0 ? r : 0.875 * this.srttMs + 0.125 * r;
  }

  timeoutMs(): number {
    if (this.srttMs < 0) return INITIAL_TIMEOUT_WALL_MS;
    return Math.min(INITIAL_TIMEOUT_WALL_MS, Math.max(MIN_TIMEOUT_WALL_MS, 2 * this.srttMs + MS_PER_TURN));
  }
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
  readonly pace: Pace;
  private startMs = 0;
  private timer: unknown = null;
  /** The pending timer runs at the next turn (not after a wait): a new event cannot need an earlier one. */
  private timerSoon = false;
  /** Inside fire(), which arms the timer itself when it ends. */
  private firing = false;
  private running = false;
  private failure: ((e: Error) => void) | null = null;
  /**
   * Pace none: timeouts waiting for their wall deadline, earliest first, with their simulated due time.
   * Bounded by the model: each bridge keeps at most one retransmission and one NAK timer per peer armed.
   */
  private readonly walled: { deadlineMs: number; duePs: number; fn: Callback }[] = [];
  private wallTimer: unknown = null;
  readonly lag = new LagStats();
  /** Pace none: the wall round trip the bridges measure (a frame to its ACK), which sizes the retransmission timeouts' wall deadlines. */
  readonly rtt = new RttEstimator();
  /**
   * Pace none: the wall time from a NAK to the frame it named, which sizes the NAK repeats' deadlines.
   * Not the ACK round trip: a frame behind a gap is acknowledged only once the gap is repaired, so
   * under loss ACK samples carry repair waits and their timeout sits at the cap, and a lost resend
   * would wait that long for its NAK's repeat.
   */
  readonly repair = new RttEstimator();

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
    if (this.running && !this.firing && !(this.timer !== null && this.timerSoon)) this.arm();
  }

  scheduleTimeout(delayPs: number, fn: Callback, kind: TimeoutKind = 'ack', sinceStamp?: number): void {
    if (this.pace === 'model') return this.schedule(delayPs, fn);
    const waitMs = this.estimator(kind).timeoutMs();
    const nowMs = this.clock.nowMs();
    // Counted from when the timed thing began (a stamp of this clock), never from before it began.
    const fromMs = sinceStamp !== undefined && sinceStamp <= nowMs ? sinceStamp : nowMs;
    const t = { deadlineMs: fromMs + Math.max(waitMs, (delayPs / 1e9) * this.o.dilation), duePs: this.inner.now() + Math.ceil(delayPs), fn };
    let i = this.walled.length;
    while (i > 0 && this.walled[i - 1].deadlineMs > t.deadlineMs) i--;
    this.walled.splice(i, 0, t);
    if (i === 0 && this.running) this.armWall();
  }

  /** A stamp for a frame a bridge times: the wall clock, ms (see Scheduler.timeoutStamp). */
  timeoutStamp(): number {
    return this.clock.nowMs();
  }

  /** The frame stamped `stamp` was acknowledged ('ack'), or the NAK stamped `stamp` repaired ('repair'): one wall sample. */
  roundTrip(stamp: number, kind: TimeoutKind = 'ack'): void {
    this.estimator(kind).add(this.clock.nowMs() - stamp);
  }

  private estimator(kind: TimeoutKind): RttEstimator {
    return kind === 'repair' ? this.repair : this.rtt;
  }

  /** Pace none: moves every timeout whose wall deadline has passed into the queue, at its simulated time or now if that has passed. */
  private releaseWalled(): void {
    this.wallTimer = null;
    const nowMs = this.clock.nowMs();
    while (this.walled.length > 0 && this.walled[0].deadlineMs <= nowMs) {
      const t = this.walled.shift()!;
      this.inner.schedule(Math.max(0, t.duePs - this.inner.now()), t.fn);
    }
    if (this.running) {
      this.armWall();
      if (!this.firing) this.arm();
    }
  }

  private armWall(): void {
    if (this.wallTimer !== null) this.clock.clear(this.wallTimer);
    this.wallTimer = null;
    if (this.walled.length > 0) this.wallTimer = this.clock.setTimer(this.walled[0].deadlineMs - this.clock.nowMs(), () => this.releaseWalled());
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
    this.armWall();
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.clearTimer();
    if (this.wallTimer !== null) this.clock.clear(this.wallTimer);
    this.wallTimer = null;
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
    this.timerSoon = false;
  }


  private soon(): unknown {
    const fire = () => this.fire();
    return this.clock.immediate ? this.clock.immediate(fire) : this.clock.setTimer(0, fire);
  }

  /** (Re)sets the one timer for the earliest pending event. */
  private arm(): void {
    this.clearTimer();
    const next = this.inner.nextDuePs();
    if (next === Infinity) return;
    const dueMs = this.pace === 'model' ? this.dueMs(next) : -Infinity;
    const waitMs = dueMs - this.clock.nowMs();
    this.timerSoon = !(waitMs > 0);
    this.timer = waitMs > 0 ? this.clock.setTimer(waitMs, () => this.fire()) : this.soon();
  }

  /** Runs the events due (pace model: by the wall clock, each measured against its due time; pace none: every one in the queue), a bounded batch per turn. */
  private fire(): void {
    this.timer = null;
    this.timerSoon = false;
    const turnStart = this.clock.nowMs();
    // The wall clock is read again only when an event seems not yet due, and every 64 events (so a
    // lag can read up to 64 events' run time short: microseconds).
    let nowMs = turnStart;
    this.firing = true;
    try {
      for (let n = 0; n < EVENTS_PER_TURN; n++) {
        const next = this.inner.nextDuePs();
        if (next === Infinity) break;
        if (this.pace === 'model') {
          const due = this.dueMs(next);
          if (due > nowMs && due > (nowMs = this.clock.nowMs())) break;
          const late = nowMs - due;
          this.lag.add(late);
          if (this.o.hardLimitMs !== undefined && late > this.o.hardLimitMs) {
            throw new DconnectError('LAG_LIMIT', `an event ran ${late.toFixed(1)} ms late, over the hard limit of ${this.o.hardLimitMs} ms (dilation ${this.o.dilation})`, 'raise --time-dilation (or use --time-dilation auto), or drop --hard-limit for best effort');
          }
        }
        this.inner.step();
        if ((n & 63) === 63 && (nowMs = this.clock.nowMs()) - turnStart > MS_PER_TURN) break;
      }
    } catch (e) {
      this.firing = false;
      this.stop();
      this.failure?.(e as Error);
      return;
    }
    this.firing = false;
    if (this.running) this.arm();
  }
}
