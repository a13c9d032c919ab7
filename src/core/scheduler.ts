/**
 * Time for every model component. Components receive a Scheduler; they never construct one and never
 * read a real clock, so the same code runs under virtual time (the simulator) and real time (live).
 *
 * Time is an integer number of picoseconds held in a JS number: exact up to 2^53 ps (about 2.5 hours
 * of simulated time), far beyond any run here.
 */
import type { StateDigest } from './digest.js';

export type Callback = () => void;

/**
 * What a timeout waits for, so live can size its wall deadline by the right measured time: 'ack', a
 * frame's acknowledgement (the retransmission backstop); 'repair', a NAK'd frame's resend (the NAK's
 * repeat). They differ: an ACK waits behind every gap the receiver is repairing, a repair does not.
 */
export type TimeoutKind = 'ack' | 'repair';

export interface Scheduler {
  /** Current time, integer picoseconds. */
  now(): number;
  /** Runs `fn` after `delayPs` (>= 0, rounded up to an integer). Events at the same time run in scheduling order. */
  schedule(delayPs: number, fn: Callback): void;
  /**
   * As `schedule`, for a timer that detects something that did not happen (a retransmission
   * timeout), not a modelled duration. Under virtual time it is the same event; live, where the
   * peer is another process whose clock is not ours, an unpaced scheduler waits for such a timer in
   * wall time instead of jumping to it (live/realtime-scheduler.ts), counted from `sinceStamp` (a
   * `timeoutStamp` taken when what is timed began, e.g. a frame's send) or else from now.
   */
  scheduleTimeout(delayPs: number, fn: Callback, kind?: TimeoutKind, sinceStamp?: number): void;
  /**
   * Live unpaced only (absent elsewhere): timeouts wait in wall time there, so they are sized by a
   * measured wall time of their kind. A reliable sender takes a stamp when it sends a frame it times
   * and hands it back to `roundTrip` when that frame is acknowledged ('ack'); a receiver takes one
   * when it NAKs a gap and hands it back when the NAK'd frame arrives ('repair')
   * (live/realtime-scheduler.ts). The stamp is opaque to the model.
   */
  timeoutStamp?(): number;
  roundTrip?(stamp: number, kind?: TimeoutKind): void;
}

/** Thrown when a run exceeds the event budget it was given: a model that never settles is a bug. */
export class EventBudgetExceeded extends Error {
  readonly code = 'EVENT_BUDGET_EXCEEDED';
  constructor(readonly budget: number) {
    super(`simulation did not settle within ${budget} events; the model is live-locked or the budget is too small`);
  }
}

/** Buckets at least (the calendar never shrinks below this). */
const MIN_BUCKETS = 16;
/** Events sampled to re-estimate the width at a resize. */
const WIDTH_SAMPLE = 25;

/**
 * Virtual-time scheduler on a calendar queue (R. Brown, "Calendar queues: a fast O(1) priority queue
 * implementation for the simulation event set problem", CACM 31(10), 1988): events hash by time into
 * `nb` buckets of `width` ps, a "year" being nb x width; each bucket keeps its events sorted by
 * (time, sequence). Dequeue scans from the current bucket for an event inside the current year
 * (usually the first bucket looked at); enqueue sorts into one short list. Both are O(1) on average
 * when the width is about three times the mean gap between pending events, which every resize
 * re-estimates from the events about to run. Same order as a heap on (time, sequence), so the same
 * runs: test/integration/full-reference.test.ts pins whole results.
 *
 * Why not a binary heap (this class was one until it was measured against this): on the hold model
 * (1000 pending) a heap sift costs ~10 levels of comparisons and moves per event; here an event
 * costs one bucket probe and a short list walk (bench/kernel.ts: ~1.3-1.7x the heap's events per
 * second on this machine; 4-ary, bottom-up, int-id and WebAssembly heaps were all slower than the
 * binary one).
 *
 * Storage: events are nodes in typed arrays (time, sequence, next) with their callbacks in a parallel
 * array, recycled through a free list; the pool doubles when full. Buckets are singly linked lists
 * with a tail pointer, so the common case, an event later than every other in its bucket, appends.
 */
export class VirtualScheduler implements Scheduler {
  private nb = MIN_BUCKETS;
  private mask = MIN_BUCKETS - 1;
  private width = 1e6;
  private widthInv = 1e-6;
  private head = new Int32Array(MIN_BUCKETS).fill(-1);
  private tail = new Int32Array(MIN_BUCKETS).fill(-1);
  private t: Float64Array;
  private sq: Float64Array;
  private next: Int32Array;
  private fns: (Callback | null)[];
  private free: Int32Array;
  private nfree: number;
  private size = 0;
  private seq = 0;
  private nowPs = 0;
  /** The bucket the next event is looked for first, and the end of its slot in the current year. */
  private cur = 0;
  private top = 1e6;
  /** Events executed so far (a trace counter). */
  eventsExecuted = 0;

  constructor(initialCapacity = 1024) {
    const cap = Math.max(16, initialCapacity);
    this.t = new Float64Array(cap);
    this.sq = new Float64Array(cap);
    this.next = new Int32Array(cap);
    this.fns = new Array<Callback | null>(cap).fill(null);
    this.free = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.free[i] = cap - 1 - i;
    this.nfree = cap;
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
    if (this.nfree === 0) this.growPool();
    const id = this.free[--this.nfree];
    this.t[id] = t;
    this.sq[id] = this.seq++;
    this.fns[id] = fn;
    this.insert(id);
    if (++this.size > 2 * this.nb) this.resize(this.nb * 2);
  }

  scheduleTimeout(delayPs: number, fn: Callback, _kind?: TimeoutKind, _sinceStamp?: number): void {
    this.schedule(delayPs, fn);
  }

  /** Links node `id` into its bucket, in (time, sequence) order. */
  private insert(id: number): void {
    const T = this.t;
    const t = T[id];
    // Keep the invariant that no event lies before the current bucket's slot.
    if (t < this.top - this.width) {
      this.cur = Math.floor(t * this.widthInv) & this.mask;
      this.top = (Math.floor(t * this.widthInv) + 1) * this.width;
    }
    const b = Math.floor(t * this.widthInv) & this.mask;
    const NX = this.next;
    const last = this.tail[b];
    // Sequence numbers only grow, so a time not earlier than the tail's goes after it.
    if (last < 0 || T[last] <= t) {
      NX[id] = -1;
      if (last < 0) this.head[b] = id;
      else NX[last] = id;
      this.tail[b] = id;
      return;
    }
    let prev = -1;
    let cur = this.head[b];
    while (cur >= 0 && T[cur] <= t) {
      prev = cur;
      cur = NX[cur];
    }
    NX[id] = cur;
    if (prev < 0) this.head[b] = id;
    else NX[prev] = id;
  }

  /** The earliest event's node (moving the current bucket to it), or -1 when none is left. */
  private findNext(): number {
    if (this.size === 0) return -1;
    const T = this.t;
    const H = this.head;
    let b = this.cur;
    let top = this.top;
    for (let k = 0; k < this.nb; k++) {
      const h = H[b];
      if (h >= 0 && T[h] < top) {
        this.cur = b;
        this.top = top;
        return h;
      }
      b = (b + 1) & this.mask;
      top += this.width;
    }
    // A year with nothing in it: take the earliest bucket head directly.
    let best = -1;
    for (let i = 0; i < this.nb; i++) {
      const h = H[i];
      if (h >= 0 && (best < 0 || T[h] < T[best] || (T[h] === T[best] && this.sq[h] < this.sq[best]))) best = h;
    }
    const slot = Math.floor(T[best] * this.widthInv);
    this.cur = slot & this.mask;
    this.top = (slot + 1) * this.width;
    return best;
  }

  /** Unlinks the head of the current bucket (found by findNext) and runs it. */
  private runNext(id: number): void {
    const b = this.cur;
    const nx = this.next[id];
    this.head[b] = nx;
    if (nx < 0) this.tail[b] = -1;
    const fn = this.fns[id]!;
    this.fns[id] = null;
    this.free[this.nfree++] = id;
    this.nowPs = this.t[id];
    this.eventsExecuted++;
    if (--this.size < this.nb / 4 && this.nb > MIN_BUCKETS) this.resize(this.nb / 2);
    fn();
  }

  /** When the earliest pending event is due, ps (Infinity when none is). */
  nextDuePs(): number {
    const id = this.findNext();
    return id < 0 ? Infinity : this.t[id];
  }

  /** Runs the earliest event; returns false when none is left. */
  step(): boolean {
    const id = this.findNext();
    if (id < 0) return false;
    this.runNext(id);
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
    const limit = this.eventsExecuted + budget;
    for (;;) {
      if (stop !== undefined && this.size > 0 && stop()) return;
      const id = this.findNext();
      if (id < 0) return;
      if (this.t[id] > until) {
        if (until > this.nowPs) this.nowPs = until; // never move time backwards
        return;
      }
      if (this.eventsExecuted >= limit) throw new EventBudgetExceeded(budget);
      this.runNext(id);
    }
  }

  /** Every pending node, in the order they will run. */
  private ordered(): number[] {
    const ids: number[] = [];
    for (let b = 0; b < this.nb; b++) for (let id = this.head[b]; id >= 0; id = this.next[id]) ids.push(id);
    const T = this.t;
    const SQ = this.sq;
    return ids.sort((a, b) => T[a] - T[b] || SQ[a] - SQ[b]);
  }

  /**
   * Pending events in the order they will run, each as its offset from now and its callback's name
   * (sequence numbers are labels: only their order counts). `skip` leaves out callbacks whose due time
   * does not matter to the future (see the caller).
   */
  digestPending(d: StateDigest, skip?: (fn: Callback) => boolean): void {
    const ids = this.ordered().filter((id) => !skip?.(this.fns[id]!));
    d.section('scheduler');
    d.num(ids.length);
    for (const id of ids) {
      d.until(this.t[id]);
      d.callback(this.fns[id]);
    }
  }

  /** New bucket count; the width from the gaps between the next events (Brown's estimate). */
  private resize(nb: number): void {
    const ids = this.ordered();
    const T = this.t;
    const n = Math.min(WIDTH_SAMPLE, ids.length);
    if (n >= 2) {
      const gaps: number[] = [];
      for (let i = 1; i < n; i++) gaps.push(T[ids[i]] - T[ids[i - 1]]);
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
      // Brown: leave out gaps over twice the mean, then three times what remains.
      const kept = gaps.filter((g) => g <= 2 * mean);
      const m = kept.length > 0 ? kept.reduce((a, b) => a + b, 0) / kept.length : mean;
      this.width = Math.max(1, 3 * m);
      this.widthInv = 1 / this.width;
    }
    this.nb = nb;
    this.mask = nb - 1;
    this.head = new Int32Array(nb).fill(-1);
    this.tail = new Int32Array(nb).fill(-1);
    const first = ids.length > 0 ? T[ids[0]] : this.nowPs;
    const slot = Math.floor(Math.min(first, this.nowPs) * this.widthInv);
    this.cur = slot & this.mask;
    this.top = (slot + 1) * this.width;
    // Re-inserted in run order, every one appends to its bucket.
    for (const id of ids) this.insert(id);
  }

  private growPool(): void {
    const old = this.t.length;
    const cap = old * 2;
    const t = new Float64Array(cap);
    t.set(this.t);
    const sq = new Float64Array(cap);
    sq.set(this.sq);
    const nx = new Int32Array(cap);
    nx.set(this.next);
    this.t = t;
    this.sq = sq;
    this.next = nx;
    for (let i = old; i < cap; i++) this.fns.push(null);
    this.free = new Int32Array(cap);
    for (let i = 0; i < cap - old; i++) this.free[i] = cap - 1 - i;
    this.nfree = cap - old;
  }
}

export const PS_PER_NS = 1_000;
export const PS_PER_US = 1_000_000;
export const PS_PER_MS = 1_000_000_000;
export const PS_PER_S = 1_000_000_000_000;
