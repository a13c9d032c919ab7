/**
 * Time for every model component. Components receive a Scheduler; they never construct one and never
 * read a real clock, so the same code runs under virtual time (the simulator) and real time (live).
 *
 * Time is an integer number of picoseconds held in a JS number: exact up to 2^53 ps (about 2.5 hours
 * of simulated time), far beyond any run here.
 */
import type { StateDigest } from './digest.js';

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
 *
 * Speed matters here (every TLP and frame is an event), so:
 * - Keys live in typed arrays and callbacks in a parallel array; the hot loop allocates nothing.
 * - Slots at and beyond `size` hold +Infinity, so sift-down reads both children without a bounds
 *   test, and picks the smaller one with a 0/1 comparison result instead of an unpredictable branch.
 *   The sequence number is only consulted when two times are equal.
 * - The root of the event being run is left as a hole: most callbacks schedule at least one event,
 *   and the first one takes the root's place with a single sift-down (instead of moving the last
 *   leaf to the root, sifting it down, then sifting the new event up). A hole left by a callback
 *   that schedules nothing (or throws) is filled before anything else reads the heap.
 * Every pending event has a distinct (time, sequence) key, so the order events run in does not
 * depend on the heap's layout.
 */
export class VirtualScheduler implements Scheduler {
  private timeKeys: Float64Array;
  private seqKeys: Float64Array;
  private fns: (Callback | null)[];
  /** Heap slots in use, counting the root hole while `hole` is set. */
  private size = 0;
  /** True while slot 0 belongs to the event that last ran (see the class comment). */
  private hole = false;
  private seq = 0;
  private nowPs = 0;
  /** Events executed so far (a trace counter). */
  eventsExecuted = 0;

  constructor(initialCapacity = 1024) {
    const cap = Math.max(1, initialCapacity);
    // One spare slot: the sentinel read as the right child of the last real slot.
    this.timeKeys = new Float64Array(cap + 1).fill(Infinity);
    this.seqKeys = new Float64Array(cap + 1).fill(Infinity);
    this.fns = [];
    for (let i = 0; i <= cap; i++) this.fns.push(null); // packed, not holey
  }

  now(): number {
    return this.nowPs;
  }

  pending(): number {
    return this.hole ? this.size - 1 : this.size;
  }

  schedule(delayPs: number, fn: Callback): void {
    if (!(delayPs >= 0)) throw new RangeError(`schedule: delay must be >= 0 ps, got ${delayPs}`);
    const t = this.nowPs + Math.ceil(delayPs);
    const s = this.seq++;
    if (this.hole) {
      this.hole = false;
      this.siftDown(t, s, fn);
      return;
    }
    if (this.size + 1 >= this.timeKeys.length) this.grow();
    const tk = this.timeKeys;
    const sk = this.seqKeys;
    const fns = this.fns;
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

  /** Puts (t, s, fn) in the root slot, whose old content is gone, and sifts it down. */
  private siftDown(t: number, s: number, fn: Callback): void {
    const tk = this.timeKeys;
    const sk = this.seqKeys;
    const fns = this.fns;
    const n = this.size;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      // The right child exists or is the +Infinity sentinel; take the smaller without branching on it.
      const a = tk[c];
      const b = tk[c + 1];
      let right = +(b < a);
      if (a === b) right = +(sk[c + 1] < sk[c]);
      c += right;
      const ct = tk[c];
      if (t < ct || (t === ct && s < sk[c])) break;
      tk[i] = ct;
      sk[i] = sk[c];
      fns[i] = fns[c];
      i = c;
    }
    tk[i] = t;
    sk[i] = s;
    fns[i] = fn;
  }

  /** Closes the root hole: the last event moves to the root and sinks to its place. */
  private fillHole(): void {
    this.hole = false;
    const n = --this.size;
    const tk = this.timeKeys;
    const sk = this.seqKeys;
    const fns = this.fns;
    const t = tk[n];
    const s = sk[n];
    const fn = fns[n];
    tk[n] = Infinity;
    sk[n] = Infinity;
    fns[n] = null;
    if (n > 0) this.siftDown(t, s, fn!);
  }

  /** Runs the earliest event; returns false when none is left. */
  step(): boolean {
    if (this.hole) this.fillHole();
    if (this.size === 0) return false;
    this.runRoot();
    return true;
  }

  /** Runs the event at the root (there must be one and no hole), leaving its slot as the hole. */
  private runRoot(): void {
    const fn = this.fns[0]!;
    this.nowPs = this.timeKeys[0];
    this.hole = true;
    this.eventsExecuted++;
    fn();
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
    if (stop === undefined && until === Infinity) {
      // The common whole run: nothing to check between events but the budget.
      const limit = start + budget;
      for (;;) {
        if (this.hole) this.fillHole();
        if (this.size === 0) return;
        if (this.eventsExecuted >= limit) throw new EventBudgetExceeded(budget);
        this.runRoot();
      }
    }
    for (;;) {
      if (this.hole) this.fillHole();
      if (this.size === 0) return;
      if (stop !== undefined && stop()) return;
      if (this.timeKeys[0] > until) {
        if (until > this.nowPs) this.nowPs = until; // never move time backwards
        return;
      }
      if (this.eventsExecuted - start >= budget) throw new EventBudgetExceeded(budget);
      this.runRoot();
    }
  }

  /**
   * Pending events in the order they will run, each as its offset from now and its callback's name
   * (sequence numbers are labels: only their order counts). `skip` leaves out callbacks whose due time
   * does not matter to the future (see the caller).
   */
  digestPending(d: StateDigest, skip?: (fn: Callback) => boolean): void {
    const idx: number[] = [];
    const start = this.hole ? 1 : 0;
    for (let i = start; i < this.size; i++) if (!skip?.(this.fns[i]!)) idx.push(i);
    const tk = this.timeKeys;
    const sk = this.seqKeys;
    idx.sort((a, b) => tk[a] - tk[b] || sk[a] - sk[b]);
    d.section('scheduler');
    d.num(idx.length);
    for (const i of idx) {
      d.until(tk[i]);
      d.callback(this.fns[i]);
    }
  }

  private grow(): void {
    const old = this.timeKeys.length;
    const len = (old - 1) * 2 + 1;
    const tk = new Float64Array(len).fill(Infinity);
    tk.set(this.timeKeys);
    const sk = new Float64Array(len).fill(Infinity);
    sk.set(this.seqKeys);
    this.timeKeys = tk;
    this.seqKeys = sk;
    for (let i = old; i < len; i++) this.fns.push(null);
  }
}

export const PS_PER_NS = 1_000;
export const PS_PER_US = 1_000_000;
export const PS_PER_MS = 1_000_000_000;
export const PS_PER_S = 1_000_000_000_000;
