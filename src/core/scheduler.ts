/**
 * Time for every model component. Components receive a Scheduler; they never construct one and never
 * read a real clock, so the same code runs under virtual time (the simulator) and real time (live).
 *
 * Time is an integer number of picoseconds held in a JS number: exact up to 2^53 ps (about 2.5 hours
 * of simulated time), far beyond any run here.
 */
export type Callback = () => void;

export interface Scheduler {
  /** Current time, integer picoseconds. */
  now(): number;
  /** Runs `fn` after `delayPs` (>= 0, rounded up to an integer). Events at the same time run in scheduling order. */
  schedule(delayPs: number, fn: Callback): void;
}

/** Thrown when a run exceeds the event budget it was given: a model that never settles is a bug. */
export class EventBudgetExceeded extends Error {
  readonly code = 'EVENT_BUDGET_EXCEEDED';
  constructor(readonly budget: number) {
    super(`simulation did not settle within ${budget} events; the model is live-locked or the budget is too small`);
  }
}

/**
 * Virtual-time scheduler: a binary min-heap ordered by (time, sequence), so runs are deterministic.
 * Keys live in typed arrays and callbacks in a parallel array to keep the hot loop allocation-free.
 */
export class VirtualScheduler implements Scheduler {
  private timeKeys: Float64Array;
  private seqKeys: Float64Array;
  private fns: (Callback | undefined)[];
  private size = 0;
  private seq = 0;
  private nowPs = 0;
  /** Events executed so far (a trace counter). */
  eventsExecuted = 0;

  constructor(initialCapacity = 1024) {
    this.timeKeys = new Float64Array(initialCapacity);
    this.seqKeys = new Float64Array(initialCapacity);
    this.fns = new Array(initialCapacity);
  }

  now(): number {
    return this.nowPs;
  }

  pending(): number {
    return this.size;
  }

  schedule(delayPs: number, fn: Callback): void {
    if (!(delayPs >= 0)) throw new RangeError(`schedule: delay must be >= 0 ps, got ${delayPs}`);
    const t = this.nowPs + Math.ceil(delayPs);
    if (this.size === this.timeKeys.length) this.grow();
    // Sift up.
    const tk = this.timeKeys;
    const sk = this.seqKeys;
    const fns = this.fns;
    const s = this.seq++;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = tk[p];
      if (pt < t || (pt === t && sk[p] < s)) break;
      tk[i] = pt;
      sk[i] = sk[p];
      fns[i] = fns[p];
      i = p;
    }
    tk[i] = t;
    sk[i] = s;
    fns[i] = fn;
  }

  /** Runs the earliest event; returns false when none is left. */
  step(): boolean {
    if (this.size === 0) return false;
    const tk = this.timeKeys;
    const sk = this.seqKeys;
    const fns = this.fns;
    const fn = fns[0]!;
    this.nowPs = tk[0];
    const n = --this.size;
    if (n > 0) {
      // Move the last element to the root and sift down.
      const t = tk[n];
      const s = sk[n];
      const f = fns[n];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        const r = c + 1;
        if (r < n && (tk[r] < tk[c] || (tk[r] === tk[c] && sk[r] < sk[c]))) c = r;
        const ct = tk[c];
        if (t < ct || (t === ct && s < sk[c])) break;
        tk[i] = ct;
        sk[i] = sk[c];
        fns[i] = fns[c];
        i = c;
      }
      tk[i] = t;
      sk[i] = s;
      fns[i] = f;
    }
    fns[n] = undefined;
    this.eventsExecuted++;
    fn();
    return true;
  }

  /**
   * Runs events until none is left, `stop()` returns true (checked between events), or the budget of
   * events is spent (then throws EventBudgetExceeded, since every run here must settle).
   */
  run(opts: { maxEvents?: number; stop?: () => boolean; untilPs?: number } = {}): void {
    const budget = opts.maxEvents ?? 5e9;
    const stop = opts.stop;
    const until = opts.untilPs ?? Infinity;
    const start = this.eventsExecuted;
    while (this.size > 0) {
      if (stop !== undefined && stop()) return;
      if (this.timeKeys[0] > until) {
        this.nowPs = until;
        return;
      }
      if (this.eventsExecuted - start >= budget) throw new EventBudgetExceeded(budget);
      this.step();
    }
  }

  private grow(): void {
    const cap = this.timeKeys.length * 2;
    const tk = new Float64Array(cap);
    tk.set(this.timeKeys);
    const sk = new Float64Array(cap);
    sk.set(this.seqKeys);
    this.timeKeys = tk;
    this.seqKeys = sk;
    this.fns.length = cap;
  }
}

export const PS_PER_NS = 1_000;
export const PS_PER_US = 1_000_000;
export const PS_PER_MS = 1_000_000_000;
export const PS_PER_S = 1_000_000_000_000;
