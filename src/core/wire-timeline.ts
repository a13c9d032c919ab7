/**
 * When one direction of a wire is busy, frame by frame (or TLP by TLP), for burst granularity
 * (docs/architecture.md "Two granularities"). A burst is committed at its last part's arrival, after
 * things that entered the transmitter later than its first parts; per frame, the transmitter serves
 * them in the order they entered. So each thing placed goes after everything committed that entered
 * no later than it, in the first gap after that which holds it: a burst's early parts go into the
 * gaps before what entered after them, and what enters between a burst's parts committed ahead goes
 * into the gaps between them. Nothing committed is ever moved.
 */

/**
 * Entries a timeline keeps at least; once it holds twice as many, the oldest half is forgotten at once
 * (so keeping it costs O(1) per entry): their gaps are given up (nothing starts before the end of
 * those forgotten). At most 2 x this many entries.
 */
export const MAX_TIMELINE_ENTRIES = 128;

export class WireTimeline {
  /** Committed entries by start, disjoint (so their ends are sorted too): [start, end) on the wire and when each entered, ps. */
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly entered: number[] = [];
  /** No entry starts before this: the end of the entries forgotten. */
  private floorPs = 0;
  private endPs = 0;
  /** The latest entry time committed: something that entered no earlier goes behind everything (the common, in-order case). */
  private lastEnteredPs = -Infinity;

  /** The latest end committed. */
  get lastEndPs(): number {
    return this.endPs;
  }

  /** Where something of `durPs` that entered at `enteredPs` starts, no earlier than `earliestPs`; records it. */
  place(earliestPs: number, durPs: number, enteredPs: number): number {
    let t = earliestPs > this.floorPs ? earliestPs : this.floorPs;
    const n = this.starts.length;
    if (n === 0 || t >= this.endPs || enteredPs >= this.lastEnteredPs) {
      // In order: behind everything committed.
      if (t < this.endPs) t = this.endPs;
      this.insert(n, t, durPs, enteredPs);
      return t;
    }
    const starts = this.starts;
    const ends = this.ends;
    const entered = this.entered;
    // The first entry still on the wire at t (ends are sorted).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    const first = lo;
    // Behind every entry that entered no later than this one.
    for (let j = n - 1; j >= first; j--) {
      if (entered[j] <= enteredPs) {
        if (ends[j] > t) t = ends[j];
        break;
      }
    }
    // Entries before the one found end no later than it, so the gap search starts there.
    let pos = n;
    for (let j = first; j < n; j++) {
      if (ends[j] <= t) continue;
      if (starts[j] >= t + durPs) {
        pos = j;
        break;
      }
      t = ends[j];
    }
    this.insert(pos, t, durPs, enteredPs);
    return t;
  }

  private insert(pos: number, startPs: number, durPs: number, enteredPs: number): void {
    const starts = this.starts;
    if (pos === starts.length) {
      starts.push(startPs);
      this.ends.push(startPs + durPs);
      this.entered.push(enteredPs);
    } else {
      starts.splice(pos, 0, startPs);
      this.ends.splice(pos, 0, startPs + durPs);
      this.entered.splice(pos, 0, enteredPs);
    }
    if (startPs + durPs > this.endPs) this.endPs = startPs + durPs;
    if (enteredPs > this.lastEnteredPs) this.lastEnteredPs = enteredPs;
    if (starts.length >= 2 * MAX_TIMELINE_ENTRIES) {
      const end = this.ends[MAX_TIMELINE_ENTRIES - 1];
      starts.splice(0, MAX_TIMELINE_ENTRIES);
      this.ends.splice(0, MAX_TIMELINE_ENTRIES);
      this.entered.splice(0, MAX_TIMELINE_ENTRIES);
      if (end > this.floorPs) this.floorPs = end;
    }
  }
}
